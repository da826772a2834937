"""TEST FIXTURE data: what vLLM, llama-server and NVIDIA's dcgm-exporter send, from their docs.

vLLM: docs/design/metrics.md and the OpenAI-compatible server's error and model-list shapes.
llama-server: tools/server/README.md (/health, /props, /slots).
dcgm-exporter: README's sample scrape (framebuffer gauges are MiB per GPU).
"""

from __future__ import annotations

VLLM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
VLLM_MAX_MODEL_LEN = 8192
VLLM_VERSION = "0.11.0"

VLLM_METRICS = f"""\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 12873.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="{VLLM_MODEL}"}} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="{VLLM_MODEL}"}} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{engine="0",model_name="{VLLM_MODEL}"}} 0.37
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{engine="0",model_name="{VLLM_MODEL}"}} 48213.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.04",model_name="{VLLM_MODEL}"}} 7.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="{VLLM_MODEL}"}} 9.0
vllm:time_to_first_token_seconds_count{{engine="0",model_name="{VLLM_MODEL}"}} 9.0
vllm:time_to_first_token_seconds_sum{{engine="0",model_name="{VLLM_MODEL}"}} 0.61
"""

# vLLM before its V1 engine called the KV cache gauge gpu_cache_usage_perc.
VLLM_V0_METRICS = f"""\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="{VLLM_MODEL}"}} 0.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="{VLLM_MODEL}"}} 4.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{model_name="{VLLM_MODEL}"}} 0.9
"""

_GPU_LABELS = (
    'gpu="{gpu}",UUID="GPU-{uuid}",pci_bus_id="00000000:{bus}:00.0",device="nvidia{gpu}",'
    'modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-box-2",DCGM_FI_DRIVER_VERSION="570.124.06"'
)
_GPU0 = _GPU_LABELS.format(gpu=0, uuid="604ac76c-d9cf-fef3-62e9-d92044ab6e52", bus="1B")
_GPU1 = _GPU_LABELS.format(gpu=1, uuid="9f3c2a1e-77b0-4c3d-8e21-5a6b7c8d9e0f", bus="43")
DCGM_GPU0_FREE_MIB, DCGM_GPU0_USED_MIB = 14_914, 66_165
DCGM_GPU1_FREE_MIB, DCGM_GPU1_USED_MIB = 81_004, 75

DCGM_METRICS = f"""\
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{{{_GPU0}}} 1980
DCGM_FI_DEV_SM_CLOCK{{{_GPU1}}} 345
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{{_GPU0}}} 93
DCGM_FI_DEV_GPU_UTIL{{{_GPU1}}} 0
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{{{_GPU1}}} {DCGM_GPU1_FREE_MIB}
DCGM_FI_DEV_FB_FREE{{{_GPU0}}} {DCGM_GPU0_FREE_MIB}
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{{_GPU0}}} {DCGM_GPU0_USED_MIB}
DCGM_FI_DEV_FB_USED{{{_GPU1}}} {DCGM_GPU1_USED_MIB}
"""

LLAMA_SERVER_MODEL = "qwen2.5-7b-instruct-q4_k_m.gguf"
LLAMA_SERVER_MODELS = {
    "object": "list",
    "data": [
        {
            "id": LLAMA_SERVER_MODEL,
            "object": "model",
            "created": 1735689600,
            "owned_by": "llamacpp",
            "meta": {
                "vocab_type": 2,
                "n_vocab": 152064,
                "n_ctx_train": 32768,
                "n_embd": 3584,
                "n_params": 7615616512,
                "size": 4677120000,
            },
        }
    ],
}
LLAMA_SERVER_HEALTH_OK = {"status": "ok"}
LLAMA_SERVER_HEALTH_LOADING = {
    "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
}
LLAMA_SERVER_PROPS = {
    "default_generation_settings": {
        "id": 0,
        "id_task": -1,
        "n_ctx": 4096,
        "speculative": False,
        "is_processing": False,
        "params": {"n_predict": -1, "temperature": 0.8, "top_k": 40, "top_p": 0.95},
    },
    "total_slots": 4,
    "model_path": "/models/qwen2.5-7b-instruct-q4_k_m.gguf",
    "chat_template": "{% for message in messages %}...{% endfor %}",
    "build_info": "b5970-4c9b0c4c",
}
LLAMA_SERVER_SLOTS = [
    {"id": 0, "n_ctx": 4096, "is_processing": True, "params": {}},
    {"id": 1, "n_ctx": 4096, "is_processing": True, "params": {}},
    {"id": 2, "n_ctx": 4096, "is_processing": False, "params": {}},
    {"id": 3, "n_ctx": 4096, "is_processing": False, "params": {}},
]
