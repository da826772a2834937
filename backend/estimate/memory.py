"""Memory estimate of a llama.cpp model load, its GPU/CPU placement, and a decode speed bound.

Pure functions over a ModelSpec. What each number stands for is what llama.cpp itself
allocates and prints when it loads a model (`model buffer`, `KV buffer`, `compute buffer`,
`output buffer`); tests/integration/test_estimate_accuracy.py and bench/estimate_accuracy.py
compare the two, component by component. The compute buffer's model:
backend.estimate.compute_graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.estimate.compute_graph import (
    KV_CELL_PADDING,
    NON_CAUSAL_ARCHITECTURES,
    compute_buffer_bytes,
    feed_forward_width,
    round_up,
)
from backend.estimate.model_info import SWA_PERIODS
from backend.estimate.spec import ModelSpec
from backend.units import MIB

# ggml block layout of the KV cache types: (elements per block, bytes per block).
# ggml/src/ggml.c type_traits: f16 = 2 bytes; block_q8_0 = 32 x int8 + f16 scale = 34 bytes;
# block_q4_0 = 32 x 4 bit + f16 scale = 18 bytes.
KV_CACHE_TYPES: dict[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
}

# Effective bits per weight of a whole llama.cpp file of each type: K-quant files are mixes
# (output and some attn_v/ffn_down tensors stay at Q6_K), so they are a little above the bare
# block size (Q4_K = 144 bytes / 256 weights = 4.5 bpw). Derived from the sizes llama.cpp lists
# for Llama-3-8B (8,030,261,248 parameters) in tools/quantize/quantize.cpp QUANT_OPTIONS, e.g.
# Q4_K_M "4.58G" (GiB): 4.58 * 2^30 * 8 / 8.03e9 = 4.90 bpw. F16/BF16: 2 bytes, F32: 4 bytes.
FILE_TYPE_BITS_PER_WEIGHT: dict[str, float] = {
    "Q2_K": 3.17,  # 2.96G
    "Q3_K_S": 3.64,  # 3.41G
    "Q3_K_M": 4.00,  # 3.74G
    "Q3_K_L": 4.31,  # 4.03G
    "Q4_0": 4.64,  # 4.34G
    "Q4_K_S": 4.67,  # 4.37G
    "Q4_K_M": 4.90,  # 4.58G
    "Q5_0": 5.57,  # 5.21G
    "Q5_K_S": 5.57,  # 5.21G
    "Q5_K_M": 5.70,  # 5.33G
    "Q6_K": 6.57,  # 6.14G
    "Q8_0": 8.52,  # 7.96G
    "F16": 16.0,
    "BF16": 16.0,
    "F32": 32.0,
}

# Ollama reserves this much of every CUDA GPU before placing layers (discover: CudaMinimumMemory
# = 457 MiB): the CUDA context, cuBLAS workspaces and allocator slack llama.cpp does not report.
CUDA_MINIMUM_BYTES = 457 * MIB
# Host-side footprint of the runtime that llama.cpp does not print: process, tokenizer tables,
# graph metadata (gguf-parser-go counts ~150 MiB of platform footprint in RAM).
HOST_OVERHEAD_BYTES = 150 * MIB

Verdict = Literal["full GPU offload", "partial offload", "CPU only", "will not fit"]

DEFAULT_RAM_BANDWIDTH_GBPS = 50.0  # dual-channel DDR4/DDR5 desktop; HEARTH_RAM_BANDWIDTH_GBPS


class EstimateError(ValueError):
    """The estimate cannot be made for these settings; the message says why."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes llama.cpp allocates for one loaded model, by component."""

    weights_bytes: int  # all tensors of the GGUF file (llama.cpp "model buffer")
    kv_cache_bytes: int  # "KV buffer"
    compute_bytes: int  # "compute buffer": the worst-case graph's activations
    output_bytes: int  # "output buffer": logits (or embeddings) handed back to the caller
    overhead_bytes: int  # host runtime footprint llama.cpp does not report
    total_bytes: int
    token_embd_bytes: int  # input embedding: always stays in RAM
    output_layer_bytes: int  # output projection (a copy of token_embd when tied)
    block_count: int
    kv_cells: int  # KV cache cells (num_ctx x parallel, padded)
    kv_cache_type: str
    flash_attention: bool
    output_layer_in_weights: bool = True  # False when tied: the output reuses token_embd

    @property
    def layer_weights_bytes(self) -> int:
        """Weights of one repeating block (the unit layers are offloaded in)."""
        repeating = self.weights_bytes - self.token_embd_bytes - self.untied_output_bytes
        return max(repeating, 0) // max(self.block_count, 1)

    @property
    def layer_kv_bytes(self) -> int:
        return self.kv_cache_bytes // max(self.block_count, 1)

    @property
    def untied_output_bytes(self) -> int:
        # weights_bytes holds the output layer only when it is a tensor of its own
        return self.output_layer_bytes if self.output_layer_in_weights else 0


@dataclass(frozen=True)
class Placement:
    gpu_layers: int  # repeating blocks plus the output layer placed on the GPU
    total_layers: int  # block_count + 1 (the output layer), as Ollama counts them
    vram_bytes: int
    ram_bytes: int
    verdict: Verdict


def weights_bytes_for(spec: ModelSpec, quant: str | None = None) -> int:
    """The file's tensor bytes: known from the spec, else parameter count x bits per weight."""
    quant = (quant or spec.quantization).upper()
    if spec.file_size_bytes and (not quant or quant == spec.quantization.upper()):
        return spec.file_size_bytes
    if quant not in FILE_TYPE_BITS_PER_WEIGHT:
        known = ", ".join(FILE_TYPE_BITS_PER_WEIGHT)
        raise EstimateError(f"Unknown quantization {quant!r} for {spec.name}; known: {known}")
    return round(spec.parameter_count * FILE_TYPE_BITS_PER_WEIGHT[quant] / 8)


def kv_row_bytes(elements: int, kv_cache_type: str) -> int:
    """Bytes of one KV row of `elements` values stored as `kv_cache_type`."""
    try:
        block, size = KV_CACHE_TYPES[kv_cache_type]
    except KeyError:
        known = ", ".join(KV_CACHE_TYPES)
        raise EstimateError(
            f"Unknown KV cache type {kv_cache_type!r}; use one of {known}"
        ) from None
    return -(-elements // block) * size


# llama_hparams::set_swa_pattern: with period p, layer il uses the window when il % p < p - 1.


def swa_layers(spec: ModelSpec) -> tuple[bool, ...]:
    """For each layer, whether it attends through the sliding window."""
    if not spec.sliding_window:
        return (False,) * spec.block_count
    period = SWA_PERIODS.get(spec.architecture, 0)
    pattern = tuple(bool(period) and il % period < period - 1 for il in range(spec.block_count))
    n_swa = spec.sliding_window_layers
    if n_swa and sum(pattern) != n_swa:  # the spec knows better than the default pattern
        pattern = tuple(il < n_swa for il in range(spec.block_count))
    return pattern


def kv_cache_bytes(
    spec: ModelSpec,
    num_ctx: int,
    kv_cache_type: str = "f16",
    parallel: int = 1,
    n_ubatch: int = 512,
    swa_full: bool = False,
) -> int:
    """cells x layers x (K row + V row); SWA layers keep only window x slots + one ubatch."""
    if spec.architecture in NON_CAUSAL_ARCHITECTURES:
        return 0  # encoders keep no KV cache
    cells = round_up(num_ctx * parallel, KV_CELL_PADDING)
    swa_cells = cells
    if spec.sliding_window and not swa_full:
        # llama_kv_cache_iswa: size_swa = min(size_base, PAD(n_swa * n_seq + n_ubatch, 256))
        swa_cells = min(cells, round_up(spec.sliding_window * parallel + n_ubatch, KV_CELL_PADDING))
    per_layer_kv = spec.head_count_kv_per_layer or (spec.head_count_kv,) * spec.block_count
    total = 0
    for heads_kv, is_swa in zip(per_layer_kv, swa_layers(spec), strict=False):
        row = kv_row_bytes(spec.head_dim_k * heads_kv, kv_cache_type) + kv_row_bytes(
            spec.head_dim_v * heads_kv, kv_cache_type
        )
        total += row * (swa_cells if is_swa else cells)
    return total


def estimate_memory(
    spec: ModelSpec,
    *,
    num_ctx: int,
    quant: str | None = None,
    kv_cache_type: str = "f16",
    parallel: int = 1,
    flash_attention: bool = False,
    n_batch: int = 512,
    n_ubatch: int = 512,
    swa_full: bool = False,
) -> MemoryEstimate:
    """What llama.cpp allocates to serve `spec` with num_ctx tokens for each of `parallel` slots."""
    if num_ctx < 1 or parallel < 1:
        raise EstimateError(
            f"Context and parallel slots must be positive, got {num_ctx}, {parallel}"
        )
    if kv_cache_type != "f16" and kv_cache_type in KV_CACHE_TYPES and not flash_attention:
        raise EstimateError(
            f"A {kv_cache_type} KV cache needs flash attention (llama.cpp refuses a quantized V "
            "cache without it); turn flash attention on or use f16."
        )
    n_ubatch = min(n_ubatch, n_batch)
    weights = weights_bytes_for(spec, quant)
    kv = kv_cache_bytes(spec, num_ctx, kv_cache_type, parallel, n_ubatch, swa_full)
    compute = compute_buffer_bytes(
        spec,
        num_ctx,
        flash_attention=flash_attention,
        n_ubatch=n_ubatch,
        parallel=parallel,
        swa_full=swa_full,
    )
    vocab = spec.vocab_size or 32000
    # one row of logits per sequence (llama_context output buffer); encoders return embeddings
    per_seq = spec.embedding_length if spec.architecture in NON_CAUSAL_ARCHITECTURES else vocab
    output = 4 * per_seq * parallel
    bytes_per_weight = weights / max(spec.parameter_count, 1)
    embd = round(vocab * spec.embedding_length * bytes_per_weight)
    total = weights + kv + compute + output + HOST_OVERHEAD_BYTES
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        compute_bytes=compute,
        output_bytes=output,
        overhead_bytes=HOST_OVERHEAD_BYTES,
        total_bytes=total,
        token_embd_bytes=embd,
        output_layer_bytes=embd,
        block_count=spec.block_count,
        kv_cells=round_up(num_ctx * parallel, KV_CELL_PADDING),
        kv_cache_type=kv_cache_type,
        flash_attention=flash_attention,
        output_layer_in_weights=not spec.tied_embeddings,
    )


def place(
    spec: ModelSpec,
    estimate: MemoryEstimate,
    free_vram_bytes: int,
    free_ram_bytes: int,
    *,
    gpu_overhead_bytes: int = CUDA_MINIMUM_BYTES,
    max_gpu_layers: int | None = None,
) -> Placement:
    """Split the model between one GPU and RAM the way Ollama does.

    The GPU first holds its runtime minimum and the compute graph; then repeating blocks are
    offloaded while the next one (weights + its KV cache) still fits; llama.cpp offloads the
    last blocks, so they go last-to-first; the output layer follows only when every block is
    on the GPU. The token embedding always stays in RAM.
    """
    total_layers = spec.block_count + 1
    limit = total_layers if max_gpu_layers is None else max(0, min(max_gpu_layers, total_layers))
    per_layer = estimate.layer_weights_bytes + estimate.layer_kv_bytes
    used = gpu_overhead_bytes + estimate.compute_bytes
    blocks = 0
    if free_vram_bytes > 0 and used + per_layer <= free_vram_bytes:
        while blocks < min(spec.block_count, limit) and used + per_layer <= free_vram_bytes:
            used += per_layer
            blocks += 1
    output_on_gpu = (
        blocks == spec.block_count
        and limit > spec.block_count
        and used + estimate.output_layer_bytes <= free_vram_bytes
    )
    gpu_layers = blocks + (1 if output_on_gpu else 0)
    cpu_blocks = spec.block_count - blocks
    ram = (
        estimate.overhead_bytes
        + estimate.output_bytes
        + estimate.token_embd_bytes
        + cpu_blocks * per_layer
        + (0 if output_on_gpu else estimate.untied_output_bytes)
        + (0 if output_on_gpu else estimate.compute_bytes)  # CPU graph for CPU-side layers
    )
    if output_on_gpu:
        used += estimate.output_layer_bytes
    vram = used if gpu_layers else 0
    if ram > free_ram_bytes:
        verdict: Verdict = "will not fit"
    elif gpu_layers == total_layers:
        verdict = "full GPU offload"
    elif gpu_layers:
        verdict = "partial offload"
    else:
        verdict = "CPU only"
    return Placement(gpu_layers, total_layers, vram, ram, verdict)


def active_weight_fraction(spec: ModelSpec) -> float:
    """Share of the weights read for one token: 1 for dense, used/all experts' share for MoE."""
    if not (spec.expert_count and spec.expert_used_count):
        return 1.0
    ff = spec.expert_feed_forward_length or feed_forward_width(spec)
    expert_params = 3 * spec.embedding_length * ff * spec.expert_count * spec.block_count
    expert_params = min(expert_params, spec.parameter_count)
    unused = expert_params * (1 - spec.expert_used_count / spec.expert_count)
    return (spec.parameter_count - unused) / spec.parameter_count


def decode_speed_bound(
    spec: ModelSpec,
    estimate: MemoryEstimate,
    placement: Placement,
    *,
    gpu_bandwidth_gbps: float | None,
    ram_bandwidth_gbps: float,
) -> float:
    """Upper bound on generated tokens/s: each token reads its weights and the full KV cache.

    Time per token = bytes on the GPU / GPU bandwidth + bytes in RAM / RAM bandwidth (the
    devices work one after the other); MoE models read only the experts they route to.
    """
    active = active_weight_fraction(spec)
    blocks_gpu = min(placement.gpu_layers, spec.block_count)
    blocks_cpu = spec.block_count - blocks_gpu
    output_on_gpu = placement.gpu_layers > spec.block_count
    layer = estimate.layer_weights_bytes * active
    gpu_bytes = blocks_gpu * (layer + estimate.layer_kv_bytes)
    cpu_bytes = blocks_cpu * (layer + estimate.layer_kv_bytes)
    if output_on_gpu:
        gpu_bytes += estimate.output_layer_bytes
    else:
        cpu_bytes += estimate.output_layer_bytes
    if gpu_bytes and not gpu_bandwidth_gbps:
        raise EstimateError("A GPU bandwidth is needed to bound the speed of GPU-offloaded layers.")
    if ram_bandwidth_gbps <= 0:
        raise EstimateError(f"RAM bandwidth must be positive, got {ram_bandwidth_gbps} GB/s")
    seconds = cpu_bytes / (ram_bandwidth_gbps * 1e9)
    if gpu_bytes:
        seconds += gpu_bytes / (float(gpu_bandwidth_gbps or 0) * 1e9)
    return 1.0 / seconds if seconds > 0 else float("inf")
