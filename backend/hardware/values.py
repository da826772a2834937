"""The hardware page's values: a snapshot of the machine and the samples its plots are made of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backend.hardware.nvml import GpuInfo, NvmlMemory


@dataclass(frozen=True)
class CpuInfo:
    model: str
    physical_cores: int | None
    logical_cores: int
    frequency_mhz: float | None
    max_frequency_mhz: float | None
    load_per_core_pct: tuple[float, ...]

    @property
    def load_pct(self) -> float:
        cores = self.load_per_core_pct
        return sum(cores) / len(cores) if cores else 0.0


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: int
    available_bytes: int
    used_bytes: int  # total - available: what programs hold, cache excluded
    swap_total_bytes: int
    swap_used_bytes: int


@dataclass(frozen=True)
class DiskInfo:
    label: str  # "data" or "models"
    path: Path | None  # None: not on this machine (error says where)
    mount_point: str = ""
    total_bytes: int | None = None
    used_bytes: int | None = None
    free_bytes: int | None = None
    error: str = ""


@dataclass(frozen=True)
class OsInfo:
    name: str  # "Ubuntu 22.04.4 LTS"
    os_id: str  # "ubuntu", "debian", ... ("" when unknown)
    version_id: str  # "22.04"
    kernel: str


@dataclass(frozen=True)
class HardwareSnapshot:
    taken_at: datetime
    gpus: tuple[GpuInfo, ...]
    nvml_reason: str  # why there is no GPU information; "" when NVML answered
    driver_version: str
    cuda_driver_version: str
    cpu: CpuInfo
    memory: MemoryInfo
    disks: tuple[DiskInfo, ...]
    os: OsInfo

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    @property
    def total_vram_bytes(self) -> int:
        return sum(g.vram_total_bytes or 0 for g in self.gpus)

    @property
    def used_vram_bytes(self) -> int:
        return sum(g.vram_used_bytes or 0 for g in self.gpus)

    @property
    def free_vram_bytes(self) -> int:
        return sum(g.vram_free_bytes or 0 for g in self.gpus)

    @property
    def gpu_bandwidth_gbps(self) -> float | None:
        """Several GPUs work as one pool (Ollama splits layers) at the slowest card's bandwidth."""
        known = [g.peak_memory_bandwidth_gbps for g in self.gpus if g.peak_memory_bandwidth_gbps]
        return min(known) if known else None

    def disk(self, label: str) -> DiskInfo | None:
        return next((d for d in self.disks if d.label == label), None)


@dataclass(frozen=True)
class Sample:
    """One tick of the sampler: the cheap numbers the history plots need."""

    taken_at: datetime
    vram_used_bytes: int
    vram_total_bytes: int
    gpu_util_pct: float | None  # mean over GPUs; None without a GPU
    ram_used_bytes: int
    ram_total_bytes: int
    cpu_pct: float
    gpu_memory: tuple[NvmlMemory | None, ...] = ()  # per GPU by index; None where the read failed
