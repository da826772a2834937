"""The memory estimator: KV cache, compute graph, placement and speed bound."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backend.engines.base import ModelSpec
from backend.estimate.compute_graph import compute_buffer_bytes
from backend.estimate.memory import (
    CUDA_MINIMUM_BYTES,
    EstimateError,
    decode_speed_bound,
    estimate_memory,
    kv_cache_bytes,
    place,
)
from backend.units import GIB, MIB

# SmolLM2-135M's facts, for which llama.cpp reports KV 45.00 MiB at 2048 (see DESIGN.md).
SMOL = ModelSpec(
    name="smollm2",
    architecture="llama",
    parameter_count=134_515_008,
    block_count=30,
    embedding_length=576,
    head_count=9,
    head_count_kv=3,
    context_length=8192,
    vocab_size=49152,
    feed_forward_length=1536,
    file_size_bytes=96_576_768,
    quantization="Q4_1",
    tied_embeddings=True,
)
LLAMA31_8B = ModelSpec(
    name="llama3.1:8b",
    architecture="llama",
    parameter_count=8_030_261_248,
    block_count=32,
    embedding_length=4096,
    head_count=32,
    head_count_kv=8,
    context_length=131072,
    vocab_size=128256,
    feed_forward_length=14336,
    quantization="Q4_K_M",
)
GEMMA3_4B = ModelSpec(
    name="gemma3:4b",
    architecture="gemma3",
    parameter_count=4_300_079_472,
    block_count=34,
    embedding_length=2560,
    head_count=8,
    head_count_kv=4,
    key_length=256,
    value_length=256,
    context_length=131072,
    vocab_size=262208,
    feed_forward_length=10240,
    sliding_window=1024,
    sliding_window_layers=29,
    quantization="Q4_K_M",
    tied_embeddings=True,
)


def test_kv_cache_matches_llama_cpp_for_smollm2() -> None:
    assert kv_cache_bytes(SMOL, 2048) == 45 * MIB
    assert kv_cache_bytes(SMOL, 8192) == 180 * MIB


def test_kv_cache_pads_to_256_cells_and_scales_with_slots() -> None:
    assert kv_cache_bytes(SMOL, 1000) == kv_cache_bytes(SMOL, 1024)
    assert kv_cache_bytes(SMOL, 2048, parallel=4) == 4 * kv_cache_bytes(SMOL, 2048)


@pytest.mark.parametrize(("kv_type", "ratio"), [("q8_0", 34 / 64), ("q4_0", 18 / 64)])
def test_quantized_kv_cache_uses_ggml_block_sizes(kv_type: str, ratio: float) -> None:
    assert kv_cache_bytes(SMOL, 4096, kv_type) == pytest.approx(kv_cache_bytes(SMOL, 4096) * ratio)


def test_sliding_window_layers_keep_only_the_window() -> None:
    full = kv_cache_bytes(GEMMA3_4B, 32768, swa_full=True)
    windowed = kv_cache_bytes(GEMMA3_4B, 32768)
    per_cell = 2 * 256 * 4 * 2  # K and V rows of 4 KV heads x 256 dims, f16
    expected = per_cell * (5 * 32768 + 29 * (1024 + 512))
    assert windowed == expected
    assert windowed < full / 4


def test_quantized_kv_without_flash_attention_is_refused() -> None:
    with pytest.raises(EstimateError, match=r"q8_0.*flash attention"):
        estimate_memory(SMOL, num_ctx=2048, kv_cache_type="q8_0")


def test_unknown_quant_and_kv_type_are_named() -> None:
    with pytest.raises(EstimateError, match="Q3_XYZ"):
        estimate_memory(replace(SMOL, file_size_bytes=None), num_ctx=512, quant="Q3_XYZ")
    with pytest.raises(EstimateError, match="q5_9"):
        estimate_memory(SMOL, num_ctx=512, kv_cache_type="q5_9", flash_attention=True)


def test_compute_buffer_follows_the_largest_phase() -> None:
    # small contexts: the logits (512 x vocab x 4 bytes) dominate; SmolLM2: 99.38 MiB measured
    assert compute_buffer_bytes(SMOL, 2048) == pytest.approx(99.38 * MIB, rel=0.02)
    # long contexts without flash attention: the attention scores take over (166.38 MiB)
    assert compute_buffer_bytes(SMOL, 8192) == pytest.approx(166.38 * MIB, rel=0.02)
    # with flash attention the scores are never materialised
    assert compute_buffer_bytes(SMOL, 8192, flash_attention=True) < 110 * MIB


def test_llama31_8b_graph_agrees_with_ollamas_formula() -> None:
    ollama_full_offload = 4 * 512 * (1 + 4 * 4096 + 8192 * (1 + 32))  # fs/ggml GraphSize
    ours = compute_buffer_bytes(LLAMA31_8B, 8192)
    assert ours == pytest.approx(ollama_full_offload, rel=0.05)


def test_estimate_totals_its_parts() -> None:
    est = estimate_memory(LLAMA31_8B, num_ctx=8192)
    parts = (
        (est.weights_bytes + est.kv_cache_bytes + est.compute_bytes + est.compute_host_bytes)
        + est.output_bytes
        + est.overhead_bytes
    )
    assert est.total_bytes == parts
    assert est.kv_cache_bytes == 1 * GIB
    assert 4.4 * GIB < est.weights_bytes < 4.8 * GIB  # Q4_K_M: ~4.9 bits per weight


def test_placement_verdicts_follow_free_memory() -> None:
    est = estimate_memory(LLAMA31_8B, num_ctx=8192)
    full = place(LLAMA31_8B, est, 24 * GIB, 32 * GIB)
    assert full.verdict == "full GPU offload" and full.gpu_layers == 33 == full.total_layers
    partial = place(LLAMA31_8B, est, 4 * GIB, 32 * GIB)
    assert partial.verdict == "partial offload" and 0 < partial.gpu_layers < 32
    assert partial.vram_bytes <= 4 * GIB
    cpu = place(LLAMA31_8B, est, 0, 32 * GIB)
    assert (cpu.verdict, cpu.gpu_layers, cpu.vram_bytes) == ("CPU only", 0, 0)
    assert place(LLAMA31_8B, est, 0, 2 * GIB).verdict == "will not fit"


def test_gpu_needs_its_runtime_minimum_before_any_layer() -> None:
    est = estimate_memory(SMOL, num_ctx=2048)
    assert place(SMOL, est, CUDA_MINIMUM_BYTES, 8 * GIB).gpu_layers == 0
    assert place(SMOL, est, CUDA_MINIMUM_BYTES + 1 * GIB, 8 * GIB).gpu_layers == 31


def test_more_vram_never_places_fewer_layers() -> None:
    est = estimate_memory(LLAMA31_8B, num_ctx=4096)
    layers = [place(LLAMA31_8B, est, gib * GIB, 64 * GIB).gpu_layers for gib in range(0, 10)]
    assert layers == sorted(layers) and layers[0] == 0 and layers[-1] == 33


def test_speed_bound_is_bandwidth_over_bytes_per_token() -> None:
    est = estimate_memory(LLAMA31_8B, num_ctx=4096)
    full = place(LLAMA31_8B, est, 24 * GIB, 64 * GIB)
    fast = decode_speed_bound(LLAMA31_8B, est, full, gpu_bandwidth_gbps=1000, ram_bandwidth_gbps=50)
    faster = decode_speed_bound(
        LLAMA31_8B, est, full, gpu_bandwidth_gbps=2000, ram_bandwidth_gbps=50
    )
    assert faster == pytest.approx(2 * fast)
    # bytes read per token: the weights on the GPU plus the KV cache (~4.5 + 0.5 GiB)
    assert 150 < fast < 220
    partial = place(LLAMA31_8B, est, 4 * GIB, 64 * GIB)
    slow = decode_speed_bound(
        LLAMA31_8B, est, partial, gpu_bandwidth_gbps=1000, ram_bandwidth_gbps=50
    )
    assert slow < fast / 3


def test_moe_reads_only_the_routed_experts() -> None:
    mixtral = replace(
        LLAMA31_8B,
        name="mixtral",
        parameter_count=46_702_792_704,
        context_length=32768,
        vocab_size=32000,
        expert_count=8,
        expert_used_count=2,
        file_size_bytes=26 * GIB,
    )
    dense = replace(mixtral, expert_count=0, expert_used_count=0)  # same bytes, all read
    speeds = []
    for spec in (mixtral, dense):
        est = estimate_memory(spec, num_ctx=4096)
        placement = place(spec, est, 0, 128 * GIB)
        speeds.append(
            decode_speed_bound(spec, est, placement, gpu_bandwidth_gbps=None, ram_bandwidth_gbps=50)
        )
    assert speeds[0] / speeds[1] == pytest.approx(46.7 / 12.9, rel=0.1)  # active 12.9B of 46.7B


def test_full_offload_moves_all_but_the_token_embedding() -> None:
    est = estimate_memory(LLAMA31_8B, num_ctx=8192)
    full = place(LLAMA31_8B, est, 24 * GIB, 32 * GIB)
    on_gpu = est.weights_bytes - est.token_embd_bytes  # untied: the output layer is in the file
    expected = on_gpu + est.kv_cache_bytes + est.compute_bytes + CUDA_MINIMUM_BYTES
    assert full.vram_bytes == pytest.approx(expected, abs=64)
    assert full.ram_bytes >= est.token_embd_bytes


def test_tied_output_is_duplicated_on_the_gpu() -> None:
    est = estimate_memory(SMOL, num_ctx=2048)  # SmolLM2 ties its output to token_embd
    full = place(SMOL, est, 8 * GIB, 8 * GIB)
    assert full.verdict == "full GPU offload"
    expected = est.weights_bytes + est.kv_cache_bytes + est.compute_bytes + CUDA_MINIMUM_BYTES
    assert full.vram_bytes == pytest.approx(expected, abs=64)
