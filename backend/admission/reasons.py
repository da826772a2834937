"""The sentences admission gives for its verdict: what a load needs, what is available, and
who holds the memory it cannot have."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from backend.units import MIB, format_size

if TYPE_CHECKING:
    from backend.admission.types import Budget, LoadRequest, Machine, Reservation
    from backend.engines.base import LoadedModel
    from backend.estimate.memory import MemoryEstimate, Placement

# Process names of Ollama's own runners as NVML/psutil report them (comm is cut at 15 chars).
OLLAMA_PROCESS_PREFIXES = ("ollama", "llama-server", "llama_server")


def usage_lines(machine: Machine, loaded: Sequence[LoadedModel]) -> list[str]:
    """Who holds the memory this load cannot have."""
    lines = []
    if machine.has_gpu:
        holders = [f"{m.name} {format_size(m.vram_bytes)} (loaded in Ollama)" for m in loaded]
        attributed = sum(m.vram_bytes for m in loaded)
        for proc in machine.gpu_processes:
            name = proc.name or "unknown process"
            if name.lower().startswith(OLLAMA_PROCESS_PREFIXES):
                continue
            size = "" if proc.used_vram_bytes is None else f" {format_size(proc.used_vram_bytes)}"
            holders.append(f"{name} (pid {proc.pid}){size}")
            attributed += proc.used_vram_bytes or 0
        used = machine.total_vram_bytes - machine.free_vram_bytes
        rest = used - attributed
        if rest > 64 * MIB:
            holders.append(f"driver, CUDA contexts and unlisted processes {format_size(rest)}")
        lines.append(
            f"GPU memory in use: {format_size(used)} of {format_size(machine.total_vram_bytes)}"
            + (f", by {', '.join(holders)}." if holders else ".")
        )
    if not machine.ram_known:
        return lines
    in_ram = [m for m in loaded if m.ram_bytes]
    used_ram = machine.total_ram_bytes - machine.free_ram_bytes
    ram_line = f"RAM in use: {format_size(used_ram)} of {format_size(machine.total_ram_bytes)}"
    if in_ram:
        ram_line += ", of it loaded models " + ", ".join(
            f"{m.name} {format_size(m.ram_bytes)}" for m in in_ram
        )
    lines.append(ram_line + ".")
    return lines


def free_line(machine: Machine, budget: Budget, reserved: Sequence[Reservation]) -> str:
    """What this load can have, after the safety margin and the loads in flight."""
    facts = f", {machine.facts}" if machine.facts else ""
    if machine.has_gpu:
        total = format_size(machine.total_vram_bytes)
        vram = f"{format_size(budget.vram)} of GPU memory ({total}{facts})"
    else:
        vram = "no GPU memory (no NVIDIA GPU found)"
    ram = f"{format_size(budget.ram)} of RAM" if machine.ram_known else "RAM not known"
    line = f"Available: {vram} and {ram}"
    extras = []
    if budget.margin_vram or budget.margin_ram:
        vram_margin = f"{format_size(budget.margin_vram)} VRAM" if machine.has_gpu else ""
        ram_margin = f"{format_size(budget.margin_ram)} RAM" if machine.ram_known else ""
        margins = " / ".join(m for m in (vram_margin, ram_margin) if m)
        learned = budget.learned.describe()
        extras.append(
            f"after keeping a safety margin of {margins} free"
            + (f" (of it {learned})" if learned else "")
        )
    if reserved:
        extras.append(
            f"{format_size(budget.reserved_vram)} VRAM + {format_size(budget.reserved_ram)} RAM "
            f"reserved for {len(reserved)} load(s) in flight "
            f"({', '.join(r.model for r in reserved)})"
        )
    return line + (f", {'; '.join(extras)}." if extras else ".")


def need_line(request: LoadRequest, estimate: MemoryEstimate, ctx: int) -> str:
    """What the load needs, component by component, and which facts the weights come from."""
    slots = f" x {request.parallel} slots" if request.parallel > 1 else ""
    fa = "on" if request.uses_flash_attention else "off"
    facts = "the file's tensors" if estimate.weights_source == "exact" else "llama.cpp's recipe"
    return (
        f"Needs {format_size(estimate.total_bytes)} at num_ctx {ctx}{slots} with a "
        f"{request.kv_cache_type} KV cache, flash attention {fa}: weights "
        f"{format_size(estimate.weights_bytes)} (from {facts}), KV cache "
        f"{format_size(estimate.kv_cache_bytes)}, compute {format_size(estimate.compute_bytes)} "
        f"+ {format_size(estimate.compute_host_bytes)} on the host, runtime "
        f"{format_size(estimate.overhead_bytes)}."
    )


def placement_line(placement: Placement) -> str:
    """Where the load's buffers go: the GPU part and the host part."""
    gpu, host = placement.gpu, placement.host
    if not placement.gpu_layers:
        return f"All of it in RAM: {format_size(host.total_bytes)}."
    return (
        f"GPU {format_size(gpu.total_bytes)} (weights {format_size(gpu.weights_bytes)}, KV "
        f"{format_size(gpu.kv_cache_bytes)}, compute {format_size(gpu.compute_bytes)}, CUDA "
        f"runtime {format_size(gpu.overhead_bytes)}); host {format_size(host.total_bytes)} "
        f"(weights {format_size(host.weights_bytes)} incl. the token embedding, KV "
        f"{format_size(host.kv_cache_bytes)}, compute {format_size(host.compute_bytes)}, "
        f"output {format_size(host.output_bytes)}, runtime {format_size(host.overhead_bytes)})."
    )
