"""spec_from_model_info: /api/show's model_info -> ModelSpec."""

from __future__ import annotations

from typing import Any

import pytest

from backend.estimate.model_info import sliding_window_layers, spec_from_model_info
from backend.estimate.spec import ModelFactsError

# docs/api.md's /api/show example (llama3.2 8B, Q4_0).
LLAMA_8B: dict[str, Any] = {
    "general.architecture": "llama",
    "general.file_type": 2,
    "general.parameter_count": 8030261248,
    "general.quantization_version": 2,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
    "llama.attention.layer_norm_rms_epsilon": 0.00001,
    "llama.block_count": 32,
    "llama.context_length": 8192,
    "llama.embedding_length": 4096,
    "llama.feed_forward_length": 14336,
    "llama.rope.dimension_count": 128,
    "llama.rope.freq_base": 500000,
    "llama.vocab_size": 128256,
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.tokens": [],
}


def test_llama_style_info_maps_every_field() -> None:
    spec = spec_from_model_info(
        "llama3:8b", LLAMA_8B, quantization="Q4_0", file_size_bytes=4_661_224_676
    )

    assert spec.name == "llama3:8b"
    assert spec.architecture == "llama"
    assert spec.parameter_count == 8_030_261_248
    assert (spec.block_count, spec.embedding_length) == (32, 4096)
    assert (spec.head_count, spec.head_count_kv) == (32, 8)
    assert spec.context_length == 8192
    assert spec.vocab_size == 128256
    assert (spec.expert_count, spec.expert_used_count) == (0, 0)
    assert spec.head_count_kv_per_layer == ()
    assert (spec.sliding_window, spec.sliding_window_layers) == (0, 0)
    assert spec.quantization == "Q4_0"
    assert spec.file_size_bytes == 4_661_224_676


def test_missing_key_length_defaults_to_embedding_over_heads() -> None:
    spec = spec_from_model_info("llama3:8b", LLAMA_8B)

    assert spec.key_length is None and spec.value_length is None
    assert (spec.head_dim_k, spec.head_dim_v) == (128, 128)


def test_explicit_key_and_value_length_are_kept() -> None:
    info = LLAMA_8B | {"llama.attention.key_length": 192, "llama.attention.value_length": 128}

    spec = spec_from_model_info("x", info)

    assert (spec.head_dim_k, spec.head_dim_v) == (192, 128)


def test_per_layer_head_count_kv_takes_the_max_and_keeps_the_list() -> None:
    per_layer = [8, 8, 0, 8, 4, 0]
    info = LLAMA_8B | {"llama.block_count": 6, "llama.attention.head_count_kv": per_layer}

    spec = spec_from_model_info("hybrid", info)

    assert spec.head_count_kv == 8
    assert spec.head_count_kv_per_layer == tuple(per_layer)


def test_uniform_per_layer_list_is_not_kept() -> None:
    info = LLAMA_8B | {"llama.block_count": 3, "llama.attention.head_count_kv": [4, 4, 4]}

    spec = spec_from_model_info("uniform", info)

    assert (spec.head_count_kv, spec.head_count_kv_per_layer) == (4, ())


def test_missing_head_count_kv_means_plain_multi_head_attention() -> None:
    info = {k: v for k, v in LLAMA_8B.items() if k != "llama.attention.head_count_kv"}

    assert spec_from_model_info("mha", info).head_count_kv == 32


def test_vocab_size_falls_back_to_the_token_list() -> None:
    info = {k: v for k, v in LLAMA_8B.items() if k != "llama.vocab_size"}

    assert spec_from_model_info("x", info).vocab_size is None  # tokens emptied (not verbose)
    assert (
        spec_from_model_info("x", info | {"tokenizer.ggml.tokens": ["a", "b", "c"]}).vocab_size == 3
    )


def test_mixture_of_experts_counts() -> None:
    info = LLAMA_8B | {"llama.expert_count": 8, "llama.expert_used_count": 2}

    spec = spec_from_model_info("mixtral", info)

    assert (spec.expert_count, spec.expert_used_count) == (8, 2)


def test_gemma3_sliding_window_uses_five_of_six_layers() -> None:
    info = {
        "general.architecture": "gemma3",
        "general.parameter_count": 4_300_079_472,
        "gemma3.attention.head_count": 8,
        "gemma3.attention.head_count_kv": 4,
        "gemma3.attention.key_length": 256,
        "gemma3.attention.value_length": 256,
        "gemma3.attention.sliding_window": 1024,
        "gemma3.block_count": 34,
        "gemma3.context_length": 131072,
        "gemma3.embedding_length": 2560,
    }

    spec = spec_from_model_info("gemma3:4b", info)

    assert spec.sliding_window == 1024
    assert spec.sliding_window_layers == 29  # layers 0-4, 6-10, ...: 34 - 5 global


@pytest.mark.parametrize(
    ("arch", "blocks", "pattern", "expected"),
    [
        ("gemma2", 42, None, 21),
        ("gemma3", 6, None, 5),
        ("cohere2", 8, 4, 6),
        ("anything", 4, [True, False, True, True], 3),
        ("unknown-arch", 32, None, 0),  # unknown: count every layer as global (safe side)
    ],
)
def test_sliding_window_layers(arch: str, blocks: int, pattern: Any, expected: int) -> None:
    assert sliding_window_layers(arch, blocks, pattern) == expected


def test_missing_architecture_raises_a_readable_error() -> None:
    with pytest.raises(ModelFactsError, match=r"'mystery' has no general\.architecture"):
        spec_from_model_info("mystery", {"llama.block_count": 32})


def test_missing_required_key_names_it() -> None:
    info = {k: v for k, v in LLAMA_8B.items() if k != "llama.block_count"}

    with pytest.raises(ModelFactsError, match=r"llama\.block_count"):
        spec_from_model_info("llama3:8b", info)
