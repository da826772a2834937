"""GGUF metadata keys (Ollama's /api/show model_info, or a GGUF header) -> ModelSpec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.estimate.spec import ModelFactsError, ModelSpec

# llama.cpp's set_swa_pattern(n) per architecture: layer il uses the window when il % n < n - 1.
SWA_PERIODS: dict[str, int] = {
    "gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gptoss": 2, "gpt-oss": 2,
}  # fmt: skip


def spec_from_model_info(
    name: str,
    model_info: Mapping[str, Any],
    *,
    quantization: str = "",
    file_size_bytes: int | None = None,
    tied_embeddings: bool = False,
    source: str | None = None,
) -> ModelSpec:
    """ModelSpec from GGUF metadata keys: /api/show's model_info or a GGUF file's header.

    source names where the keys came from in error messages.
    """
    source = source or f"Ollama's description of '{name}'"
    arch = model_info.get("general.architecture")
    if not arch:
        raise ModelFactsError(f"{source} has no general.architecture.")

    def key(suffix: str) -> Any:
        value = model_info.get(f"{arch}.{suffix}")
        return None if value == [] else value  # Ollama empties long arrays unless verbose

    def required(suffix: str) -> Any:
        value = key(suffix)
        if value is None:
            raise ModelFactsError(f"{source} has no {arch}.{suffix}.")
        return value

    block_count = int(required("block_count"))
    head_count = _max_int(required("attention.head_count"))
    kv = key("attention.head_count_kv")
    kv = head_count if kv is None else kv
    per_layer = tuple(int(v) for v in kv) if isinstance(kv, list | tuple) else ()
    sliding_window = int(key("attention.sliding_window") or 0)
    swa_pattern = key("attention.sliding_window_pattern")
    return ModelSpec(
        name=name,
        architecture=str(arch),
        parameter_count=int(model_info.get("general.parameter_count") or 0),
        block_count=block_count,
        embedding_length=int(required("embedding_length")),
        head_count=head_count,
        head_count_kv=_max_int(kv),
        context_length=int(required("context_length")),
        key_length=_optional_int(key("attention.key_length")),
        value_length=_optional_int(key("attention.value_length")),
        vocab_size=_vocab_size(model_info, arch),
        expert_count=int(key("expert_count") or 0),
        expert_used_count=int(key("expert_used_count") or 0),
        head_count_kv_per_layer=per_layer if len(set(per_layer)) > 1 else (),
        sliding_window=sliding_window,
        sliding_window_layers=(
            sliding_window_layers(str(arch), block_count, swa_pattern) if sliding_window else 0
        ),
        file_size_bytes=file_size_bytes,
        quantization=quantization,
        feed_forward_length=_max_int(key("feed_forward_length") or 0),
        expert_feed_forward_length=_max_int(key("expert_feed_forward_length") or 0),
        tied_embeddings=tied_embeddings,
    )


def sliding_window_layers(arch: str, block_count: int, pattern: Any = None) -> int:
    """How many layers use the sliding window: from the per-layer pattern, its period, or arch.

    An unknown architecture counts 0 (every layer global), which overestimates the KV cache
    rather than underestimating it.
    """
    if isinstance(pattern, list | tuple):
        return sum(1 for is_swa in pattern if is_swa)
    period = int(pattern) if pattern is not None else SWA_PERIODS.get(arch, 0)
    if period <= 0:
        return 0
    return sum(1 for layer in range(block_count) if layer % period < period - 1)


def _vocab_size(model_info: Mapping[str, Any], arch: str) -> int | None:
    size = model_info.get(f"{arch}.vocab_size")
    if size:
        return int(size)
    tokens = model_info.get("tokenizer.ggml.tokens")  # a list, or its length from a GGUF header
    if isinstance(tokens, int):
        return tokens or None
    return len(tokens) if isinstance(tokens, list) and tokens else None


def _max_int(value: Any) -> int:
    if isinstance(value, list | tuple):
        return max(int(v) for v in value)
    return int(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
