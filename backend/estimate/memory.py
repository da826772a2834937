"""Memory estimate of a llama.cpp model load, its GPU/CPU placement, and a decode speed bound.

Pure functions over a ModelSpec. What each number stands for is what llama.cpp itself
allocates and prints when it loads a model (`model buffer`, `KV buffer`, `compute buffer`,
`output buffer`); tests/integration/test_estimate_accuracy.py and bench/estimate_accuracy.py
compare the two, component by component. The compute buffer's model:
backend.estimate.compute_graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.estimate import placement as _placement
from backend.estimate.compute_graph import (
    KV_CELL_PADDING,
    NON_CAUSAL_ARCHITECTURES,
    compute_buffer_bytes,
    feed_forward_width,
    graph_input_bytes,
    round_up,
)
from backend.estimate.model_info import SWA_PERIODS
from backend.estimate.placement import CUDA_MINIMUM_BYTES, DeviceParts, Placement, Verdict
from backend.estimate.quant_recipe import FILE_TYPE_BASE, RecipeError
from backend.estimate.spec import ModelSpec
from backend.estimate.tensors import TensorError, WeightsBreakdown, WeightsSource, spec_weights
from backend.units import MIB

__all__ = ["CUDA_MINIMUM_BYTES", "DeviceParts", "Placement", "Verdict"]

# ggml block layout of the KV cache types: (elements per block, bytes per block).
# ggml/src/ggml.c type_traits: f16 = 2 bytes; block_q8_0 = 32 x int8 + f16 scale = 34 bytes;
# block_q4_0 = 32 x 4 bit + f16 scale = 18 bytes.
KV_CACHE_TYPES: dict[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
}

# Host-side footprint of the runtime that llama.cpp does not print: process, tokenizer tables,
# graph metadata (gguf-parser-go counts ~150 MiB of platform footprint in RAM).
HOST_OVERHEAD_BYTES = 150 * MIB

DEFAULT_RAM_BANDWIDTH_GBPS = 50.0  # dual-channel DDR4/DDR5 desktop; HEARTH_RAM_BANDWIDTH_GBPS


class EstimateError(ValueError):
    """The estimate cannot be made for these settings; the message says why."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes llama.cpp allocates for one loaded model, by component."""

    weights_bytes: int  # all tensors of the GGUF file (llama.cpp "model buffer")
    kv_cache_bytes: int  # "KV buffer"
    compute_bytes: int  # "compute buffer" on the GPU: the worst-case graph's activations
    output_bytes: int  # "output buffer": logits (or embeddings) handed back to the caller
    overhead_bytes: int  # host runtime footprint llama.cpp does not report
    total_bytes: int  # every buffer once (a tied output duplicated on the GPU not counted)
    token_embd_bytes: int  # input embedding: always stays in RAM
    output_layer_bytes: int  # output weight (0 bytes of it when tied), final norm, vision tower
    block_count: int
    kv_cells: int  # KV cache cells (num_ctx x parallel, padded)
    kv_cache_type: str
    flash_attention: bool
    tied_output_bytes: int = 0  # the token embedding a tied output duplicates onto the GPU
    layer_weights: tuple[int, ...] = ()  # bytes of each repeating block
    layer_kv: tuple[int, ...] = ()  # KV cache bytes of each block
    compute_host_bytes: int = 0  # host part of the compute buffer when layers are offloaded
    compute_cpu_bytes: int = 0  # the compute buffer when everything runs on the CPU
    weights_source: WeightsSource = "recipe"  # exact: the file's tensors; recipe: shapes + recipe
    num_ctx: int = 0  # tokens per slot
    parallel: int = 1  # slots

    @property
    def layer_weights_bytes(self) -> int:
        """Weights of one repeating block on average (the unit layers are offloaded in)."""
        return sum(self.layer_weights) // max(self.block_count, 1)

    @property
    def layer_kv_bytes(self) -> int:
        return self.kv_cache_bytes // max(self.block_count, 1)

    @property
    def untied_output_bytes(self) -> int:
        """The output layer's own bytes in the file (the final norm only, when tied)."""
        return self.output_layer_bytes


def weights_for(spec: ModelSpec, quant: str | None = None) -> WeightsBreakdown:
    """The file's tensors grouped by placement: exact from the spec's tensors, else the recipe.

    A spec that knows its file size but not its tensors (Ollama without verbose) keeps the
    recipe's split and takes the size from the file.
    """
    wanted = (quant or spec.quantization or "F16").upper()
    same_file = not quant or wanted == spec.quantization.upper()
    try:
        weights = spec_weights(spec, wanted if not spec.tensors or not same_file else None)
    except (RecipeError, TensorError):
        if not (spec.file_size_bytes and same_file):
            known = ", ".join(FILE_TYPE_BASE)
            raise EstimateError(
                f"Unknown quantization {wanted!r} for {spec.name}; known: {known}"
            ) from None
        weights = spec_weights(spec, "F16")  # only the proportions are used below
    if weights.source == "recipe" and spec.file_size_bytes and same_file:
        weights = _scaled(weights, spec.file_size_bytes)
    return weights


def _scaled(weights: WeightsBreakdown, total: int) -> WeightsBreakdown:
    if not weights.total_bytes or weights.total_bytes == total:
        return weights
    ratio = total / weights.total_bytes
    layers = tuple(round(b * ratio) for b in weights.layer_bytes)
    embd = round(weights.token_embd_bytes * ratio)
    output = total - embd - sum(layers)
    tied = embd if weights.tied_output_bytes else 0
    return WeightsBreakdown(embd, layers, output, tied, weights.source, weights.tensor_count)


def weights_bytes_for(spec: ModelSpec, quant: str | None = None) -> int:
    """The file's tensor bytes: exact from its tensors or file size, else llama.cpp's recipe."""
    return weights_for(spec, quant).total_bytes


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
    return sum(kv_layer_bytes(spec, num_ctx, kv_cache_type, parallel, n_ubatch, swa_full))


def kv_layer_bytes(
    spec: ModelSpec,
    num_ctx: int,
    kv_cache_type: str = "f16",
    parallel: int = 1,
    n_ubatch: int = 512,
    swa_full: bool = False,
) -> tuple[int, ...]:
    """Each layer's KV cache bytes (a layer's rows live on the device of the layer)."""
    if spec.architecture in NON_CAUSAL_ARCHITECTURES:
        return (0,) * spec.block_count  # encoders keep no KV cache
    cells = round_up(num_ctx * parallel, KV_CELL_PADDING)
    swa_cells = cells
    if spec.sliding_window and not swa_full:
        # llama_kv_cache_iswa: size_swa = min(size_base, PAD(n_swa * n_seq + n_ubatch, 256))
        swa_cells = min(cells, round_up(spec.sliding_window * parallel + n_ubatch, KV_CELL_PADDING))
    per_layer_kv = spec.head_count_kv_per_layer or (spec.head_count_kv,) * spec.block_count
    layers = []
    for heads_kv, is_swa in zip(per_layer_kv, swa_layers(spec), strict=False):
        row = kv_row_bytes(spec.head_dim_k * heads_kv, kv_cache_type) + kv_row_bytes(
            spec.head_dim_v * heads_kv, kv_cache_type
        )
        layers.append(row * (swa_cells if is_swa else cells))
    return tuple(layers)


def _check_settings(num_ctx: int, parallel: int, kv_cache_type: str, flash_attention: bool) -> None:
    if num_ctx < 1 or parallel < 1:
        raise EstimateError(
            f"Context and parallel slots must be positive, got {num_ctx}, {parallel}"
        )
    if kv_cache_type != "f16" and kv_cache_type in KV_CACHE_TYPES and not flash_attention:
        raise EstimateError(
            f"A {kv_cache_type} KV cache needs flash attention (llama.cpp refuses a quantized V "
            "cache without it); turn flash attention on or use f16."
        )


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
    """What llama.cpp allocates to serve `spec` with num_ctx tokens for each of `parallel` slots.

    Ollama runs a model with `--ctx-size num_ctx x parallel --parallel N`: the KV cache and the
    compute graph span every slot's cells, the output buffer holds one row per slot.
    """
    _check_settings(num_ctx, parallel, kv_cache_type, flash_attention)
    n_ubatch = min(n_ubatch, n_batch)
    weights = weights_for(spec, quant)
    layer_kv = kv_layer_bytes(spec, num_ctx, kv_cache_type, parallel, n_ubatch, swa_full)
    graph = {"flash_attention": flash_attention, "n_ubatch": n_ubatch, "parallel": parallel,
             "swa_full": swa_full}  # fmt: skip
    compute = compute_buffer_bytes(spec, num_ctx, **graph)  # type: ignore[arg-type]
    host_compute = graph_input_bytes(spec, num_ctx, **graph)  # type: ignore[arg-type]
    vocab = spec.vocab_size or 32000
    # one row of logits per sequence (llama_context output buffer); encoders return embeddings
    per_seq = spec.embedding_length if spec.architecture in NON_CAUSAL_ARCHITECTURES else vocab
    output = 4 * per_seq * parallel
    kv = sum(layer_kv)
    total = weights.total_bytes + kv + compute + host_compute + output + HOST_OVERHEAD_BYTES
    return MemoryEstimate(
        weights_bytes=weights.total_bytes,
        kv_cache_bytes=kv,
        compute_bytes=compute,
        output_bytes=output,
        overhead_bytes=HOST_OVERHEAD_BYTES,
        total_bytes=total,
        token_embd_bytes=weights.token_embd_bytes,
        output_layer_bytes=weights.output_bytes,
        block_count=spec.block_count,
        kv_cells=round_up(num_ctx * parallel, KV_CELL_PADDING),
        kv_cache_type=kv_cache_type,
        flash_attention=flash_attention,
        tied_output_bytes=weights.tied_output_bytes,
        layer_weights=weights.layer_bytes,
        layer_kv=layer_kv,
        compute_host_bytes=host_compute,
        compute_cpu_bytes=compute,
        weights_source=weights.source,
        num_ctx=num_ctx,
        parallel=parallel,
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
    """Split the model between one GPU and RAM the way Ollama does (see estimate.placement)."""
    del spec  # the estimate carries every per-layer fact the placement reads
    return _placement.place(
        estimate,
        free_vram_bytes,
        free_ram_bytes,
        gpu_overhead_bytes=gpu_overhead_bytes,
        max_gpu_layers=max_gpu_layers,
    )


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
    output = estimate.output_layer_bytes + estimate.tied_output_bytes
    if output_on_gpu:
        gpu_bytes += output
    else:
        cpu_bytes += output
    if gpu_bytes and not gpu_bandwidth_gbps:
        raise EstimateError("A GPU bandwidth is needed to bound the speed of GPU-offloaded layers.")
    if ram_bandwidth_gbps <= 0:
        raise EstimateError(f"RAM bandwidth must be positive, got {ram_bandwidth_gbps} GB/s")
    seconds = cpu_bytes / (ram_bandwidth_gbps * 1e9)
    if gpu_bytes:
        seconds += gpu_bytes / (float(gpu_bandwidth_gbps or 0) * 1e9)
    return 1.0 / seconds if seconds > 0 else float("inf")
