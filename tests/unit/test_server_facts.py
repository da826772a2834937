"""Parsing what vLLM, llama-server and a DCGM exporter say about themselves."""

from __future__ import annotations

import pytest

from backend.engines.server_facts import (
    LlamaCppFacts,
    ServerFacts,
    VllmLoad,
    parse_dcgm_metrics,
    parse_llama_cpp,
    parse_vllm_metrics,
)
from backend.units import MIB
from tests.support import openai_texts as texts


def test_vllm_metrics_give_running_waiting_and_kv_cache() -> None:
    assert parse_vllm_metrics(texts.VLLM_METRICS) == VllmLoad(2, 1, 0.37)


def test_vllm_v0_metrics_name_the_kv_cache_gauge_differently() -> None:
    assert parse_vllm_metrics(texts.VLLM_V0_METRICS) == VllmLoad(0, 4, 0.9)


def test_vllm_gauges_are_summed_over_models() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="a"} 2\n'
        'vllm:num_requests_running{model_name="b"} 3\n'
    )
    assert parse_vllm_metrics(text) == VllmLoad(5, 0, None)


def test_metrics_without_vllm_gauges_are_not_vllm() -> None:
    assert parse_vllm_metrics(texts.DCGM_METRICS) is None


def test_bad_metrics_text_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_vllm_metrics('vllm:num_requests_running{model_name="a} what\n')


def test_dcgm_gives_free_and_used_bytes_per_gpu_in_index_order() -> None:
    gpus = parse_dcgm_metrics(texts.DCGM_METRICS)
    assert [g.index for g in gpus] == [0, 1]
    first, second = gpus
    assert first.free_bytes == texts.DCGM_GPU0_FREE_MIB * MIB
    assert first.used_bytes == texts.DCGM_GPU0_USED_MIB * MIB
    assert second.free_bytes == texts.DCGM_GPU1_FREE_MIB * MIB
    assert first.uuid == "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert second.total_bytes == (texts.DCGM_GPU1_FREE_MIB + texts.DCGM_GPU1_USED_MIB) * MIB


def test_dcgm_gpu_with_only_one_of_the_two_gauges_is_left_out() -> None:
    text = '# TYPE DCGM_FI_DEV_FB_FREE gauge\nDCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-a"} 100\n'
    assert parse_dcgm_metrics(text) == []


def test_llama_server_props_slots_and_health() -> None:
    facts = parse_llama_cpp(
        texts.LLAMA_SERVER_HEALTH_OK, texts.LLAMA_SERVER_PROPS, texts.LLAMA_SERVER_SLOTS
    )
    assert facts == LlamaCppFacts(
        health="ok",
        slots_total=4,
        slots_busy=2,
        context_per_slot=4096,
        model_path="/models/qwen2.5-7b-instruct-q4_k_m.gguf",
        build="b5970-4c9b0c4c",
    )


def test_llama_server_loading_and_slots_disabled() -> None:
    facts = parse_llama_cpp(texts.LLAMA_SERVER_HEALTH_LOADING, texts.LLAMA_SERVER_PROPS, None)
    assert facts.health == "loading model"
    assert (facts.slots_total, facts.slots_busy) == (4, None)


def test_older_llama_server_slots_use_a_state_number() -> None:
    slots = [{"id": 0, "n_ctx": 2048, "state": 1}, {"id": 1, "n_ctx": 2048, "state": 0}]
    facts = parse_llama_cpp(None, None, slots)
    assert (facts.health, facts.slots_total, facts.slots_busy) == ("", 2, 1)
    assert facts.context_per_slot == 2048


def test_summaries_name_the_numbers() -> None:
    vllm = ServerFacts("vllm", "0.11.0", vllm=VllmLoad(2, 1, 0.37)).summary()
    assert vllm == "vLLM 0.11.0: 2 running, 1 waiting, KV cache 37%"
    llama = ServerFacts("llama.cpp", llama_cpp=LlamaCppFacts("ok", 4, 2, 4096)).summary()
    assert llama == "llama.cpp, health ok, 2/4 slots busy, 4096 tokens per slot"
    assert "no metrics" in ServerFacts("openai").summary()
