"""Admission's value types: what it reads, what it decides, what it holds for loads in flight.

They import nothing else from this package, so reasons, reservations and decide can all use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from backend.admission.settings import NO_LEARNED_MARGIN, LearnedMargin, Policy
from backend.engines.base import ModelSpec
from backend.estimate.memory import DEFAULT_RAM_BANDWIDTH_GBPS, MemoryEstimate, Placement, Verdict
from backend.hardware.nvml import GpuProcess
from backend.units import format_size

if TYPE_CHECKING:
    from backend.hardware.monitor import HardwareSnapshot

AdmissionVerdict = Literal["admit", "warn", "refuse"]


@dataclass(frozen=True)
class Machine:
    """What admission reads of one host: a HardwareSnapshot of this machine (all GPUs pooled, as
    Ollama splits layers), or another host's GPU facts (its RAM is not known there)."""

    free_vram_bytes: int
    total_vram_bytes: int
    free_ram_bytes: int
    total_ram_bytes: int
    gpu_processes: tuple[GpuProcess, ...] = ()
    gpu_bandwidth_gbps: float | None = None
    ram_bandwidth_gbps: float = DEFAULT_RAM_BANDWIDTH_GBPS
    ram_known: bool = True  # False: another host, whose RAM Hearth does not read
    facts: str = ""  # where the GPU numbers come from, "" for this machine's NVML
    unknown: str = ""  # why this host's GPU memory is not known ("" when it is): a sentence

    @property
    def has_gpu(self) -> bool:
        return self.total_vram_bytes > 0

    @classmethod
    def from_snapshot(
        cls, snapshot: HardwareSnapshot, ram_bandwidth_gbps: float = DEFAULT_RAM_BANDWIDTH_GBPS
    ) -> Machine:
        return cls(
            free_vram_bytes=snapshot.free_vram_bytes,
            total_vram_bytes=snapshot.total_vram_bytes,
            free_ram_bytes=snapshot.memory.available_bytes,
            total_ram_bytes=snapshot.memory.total_bytes,
            gpu_processes=tuple(p for g in snapshot.gpus for p in g.processes),
            gpu_bandwidth_gbps=snapshot.gpu_bandwidth_gbps,
            ram_bandwidth_gbps=ram_bandwidth_gbps,
        )


@dataclass(frozen=True)
class LoadRequest:
    model: str  # the name the engine loads, e.g. "llama3.1:8b"
    spec: ModelSpec
    num_ctx: int
    kv_cache_type: str = "f16"
    alternatives: tuple[ModelSpec, ...] = ()  # other quantizations of the same model
    parallel: int = 1  # slots, each of num_ctx tokens (OLLAMA_NUM_PARALLEL)
    flash_attention: bool | None = None  # None: on exactly when the KV cache is quantized

    @property
    def uses_flash_attention(self) -> bool:
        fa = self.flash_attention
        return self.kv_cache_type != "f16" if fa is None else fa or self.kv_cache_type != "f16"


@dataclass(frozen=True)
class Suggestion:
    """Something that would load instead, with its own estimate and verdict."""

    label: str
    verdict: AdmissionVerdict
    placement_verdict: Verdict
    total_bytes: int
    vram_bytes: int
    ram_bytes: int
    model: str
    num_ctx: int
    kv_cache_type: str
    unload: tuple[str, ...] = ()

    def describe(self) -> str:
        return (
            f"{self.label}: needs {format_size(self.total_bytes)} "
            f"({format_size(self.vram_bytes)} VRAM + {format_size(self.ram_bytes)} RAM, "
            f"{self.placement_verdict}) → {self.verdict}"
        )


@dataclass(frozen=True)
class Decision:
    model: str
    verdict: AdmissionVerdict
    policy: Policy
    num_ctx: int
    kv_cache_type: str
    estimate: MemoryEstimate
    placement: Placement
    tokens_per_s_bound: float | None
    free_vram_bytes: int  # what this load could use: free - reservations - margin (+ evictions)
    free_ram_bytes: int
    reasons: tuple[str, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    evicts: tuple[str, ...] = ()  # loaded models Ollama would unload to make room
    already_loaded: bool = False
    host: str = ""  # the engine of a pool this decision is about ("" on a single engine)
    summary: str = ""  # the one sentence of reasons that decided the verdict

    @property
    def admitted(self) -> bool:
        return self.verdict != "refuse"

    def message(self) -> str:
        lines = [self._headline(), *self.reasons]
        lines += [f"Instead: {s.describe()}" for s in self.suggestions]
        return "\n".join(lines)

    def brief(self) -> str:
        """The verdict and why, without the numbers of a load that goes ahead: the chat's
        notice, where message()'s every line would push the message box off the screen."""
        if self.verdict == "refuse" or not self.summary:
            return self.message()
        lines = [self._headline(), self.summary]
        if self.evicts:
            lines.append(f"To make room the engine would unload {', '.join(self.evicts)}.")
        return "\n".join(lines)

    def _headline(self) -> str:
        head = {"admit": "Admitted", "warn": "Admitted with a warning", "refuse": "Refused"}
        where = f" on {self.host}" if self.host else ""
        return f"{head[self.verdict]}: {self.model} at num_ctx {self.num_ctx}{where}."


@dataclass(frozen=True)
class Budget:
    """What one load may use after reservations and the safety margin, and what they took."""

    vram: int
    ram: int
    reserved_vram: int = 0
    reserved_ram: int = 0
    margin_vram: int = 0
    margin_ram: int = 0
    learned: LearnedMargin = NO_LEARNED_MARGIN  # part of the margin learned from past loads


@dataclass(frozen=True)
class Reservation:
    """Memory promised to one load in flight."""

    id: int
    model: str
    vram_bytes: int
    ram_bytes: int
    host: str = ""  # the engine of a pool it is promised on ("" on a single engine)
