"""Where llama.cpp puts each buffer of a load, and how many layers Ollama offloads.

llama.cpp (llama-model.cpp load_tensors, llama-context.cpp) with `n_gpu_layers` = g:
- the token embedding always stays in host memory (CPU_Mapped);
- the last g repeating blocks go to the GPU (layer il when il >= n_layer - g), each with its
  weights and its KV cache rows; the others stay in host memory (their KV in CUDA_Host);
- the output layer (output weight, final norm) goes to the GPU only when g > n_layer; a tied
  output weight is then duplicated onto the GPU, since the original token embedding stays home;
- the compute buffer is split into a GPU part (the worst-case graph) and a host part (the
  graph inputs: token embeddings of one ubatch and the attention masks); with no GPU layer the
  whole graph is computed on the CPU;
- the output buffer (logits for every slot) is in host memory.
Ollama reserves CUDA_MINIMUM_BYTES of every GPU first and offloads blocks while they fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from backend.estimate.memory import MemoryEstimate

MIB = 1024**2
# Ollama reserves this much of every CUDA GPU before placing layers (discover: CudaMinimumMemory
# = 457 MiB): the CUDA context, cuBLAS workspaces and allocator slack llama.cpp does not report.
CUDA_MINIMUM_BYTES = 457 * MIB

Verdict = Literal["full GPU offload", "partial offload", "CPU only", "will not fit"]


@dataclass(frozen=True)
class DeviceParts:
    """What one side (GPU or host memory) holds of a load, by llama.cpp buffer."""

    weights_bytes: int = 0  # "model buffer" (CUDA0 / CPU_Mapped)
    kv_cache_bytes: int = 0  # "KV buffer"
    compute_bytes: int = 0  # "compute buffer" (CUDA0 / CUDA_Host or CPU)
    output_bytes: int = 0  # "output buffer" (host only)
    overhead_bytes: int = 0  # runtime not printed by llama.cpp (CUDA minimum / host runtime)

    @property
    def total_bytes(self) -> int:
        return (
            self.weights_bytes
            + self.kv_cache_bytes
            + self.compute_bytes
            + self.output_bytes
            + self.overhead_bytes
        )

    @property
    def printed_bytes(self) -> int:
        """What llama.cpp's own buffer lines add up to on this side (no runtime overhead)."""
        return self.total_bytes - self.overhead_bytes


@dataclass(frozen=True)
class Placement:
    gpu_layers: int  # repeating blocks plus the output layer placed on the GPU
    total_layers: int  # block_count + 1 (the output layer), as Ollama counts them
    vram_bytes: int
    ram_bytes: int
    verdict: Verdict
    gpu: DeviceParts = DeviceParts()
    host: DeviceParts = DeviceParts()

    @property
    def total_bytes(self) -> int:
        return self.vram_bytes + self.ram_bytes


def split(
    estimate: MemoryEstimate, gpu_layers: int, gpu_overhead_bytes: int = CUDA_MINIMUM_BYTES
) -> tuple[DeviceParts, DeviceParts]:
    """GPU and host parts with `gpu_layers` layers offloaded (the output layer counts last)."""
    blocks = estimate.block_count
    gpu_blocks = max(0, min(gpu_layers, blocks))
    output_on_gpu = gpu_layers > blocks
    first_gpu = blocks - gpu_blocks
    layer_w, layer_kv = estimate.layer_weights, estimate.layer_kv
    gpu_weights = sum(layer_w[first_gpu:])
    host_weights = estimate.token_embd_bytes + sum(layer_w[:first_gpu])
    if output_on_gpu:
        gpu_weights += estimate.output_layer_bytes + estimate.tied_output_bytes
    else:
        host_weights += estimate.output_layer_bytes
    host = DeviceParts(
        weights_bytes=host_weights,
        kv_cache_bytes=sum(layer_kv[:first_gpu]),
        compute_bytes=estimate.compute_host_bytes if gpu_layers else estimate.compute_cpu_bytes,
        output_bytes=estimate.output_bytes,
        overhead_bytes=estimate.overhead_bytes,
    )
    if not gpu_layers:
        return DeviceParts(), host
    gpu = DeviceParts(
        weights_bytes=gpu_weights,
        kv_cache_bytes=sum(layer_kv[first_gpu:]),
        compute_bytes=estimate.compute_bytes,
        overhead_bytes=gpu_overhead_bytes,
    )
    return gpu, host


def place(
    estimate: MemoryEstimate,
    free_vram_bytes: int,
    free_ram_bytes: int,
    *,
    gpu_overhead_bytes: int = CUDA_MINIMUM_BYTES,
    max_gpu_layers: int | None = None,
) -> Placement:
    """Split the model between one GPU and RAM the way Ollama does.

    Layers are offloaded (last block first, the output layer after every block) while the
    GPU's parts, its runtime minimum included, still fit in free_vram_bytes.
    """
    total_layers = estimate.block_count + 1
    limit = total_layers if max_gpu_layers is None else max(0, min(max_gpu_layers, total_layers))
    layers = 0
    if free_vram_bytes > 0:
        for trial in range(1, limit + 1):
            gpu, _ = split(estimate, trial, gpu_overhead_bytes)
            if gpu.total_bytes > free_vram_bytes:
                break
            layers = trial
    gpu, host = split(estimate, layers, gpu_overhead_bytes)
    if host.total_bytes > free_ram_bytes:
        verdict: Verdict = "will not fit"
    elif layers == total_layers:
        verdict = "full GPU offload"
    elif layers:
        verdict = "partial offload"
    else:
        verdict = "CPU only"
    return Placement(layers, total_layers, gpu.total_bytes, host.total_bytes, verdict, gpu, host)
