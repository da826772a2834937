"""What the box has and what it is doing: a HardwareSnapshot from NVML and psutil, and a sampler."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from backend.engines.model_store import ModelStore
from backend.hardware.nvml import (
    GpuInfo,
    GpuProcess,
    Nvml,
    NvmlError,
    NvmlMemory,
    RealNvml,
    peak_memory_bandwidth_gbps,
    read_field,
    read_gpu,
)
from backend.hardware.readers import (
    cpu_busy_pct,
    frequency_mhz,
    read_cpu_model,
    read_disk,
    read_memory,
    read_os,
)
from backend.hardware.values import (
    CpuInfo,
    DiskInfo,
    HardwareSnapshot,
    MemoryInfo,
    OsInfo,
    Sample,
)

log = logging.getLogger(__name__)

__all__ = [
    "CpuInfo",
    "DiskInfo",
    "GpuInfo",
    "GpuProcess",
    "HardwareMonitor",
    "HardwareSnapshot",
    "MemoryInfo",
    "OsInfo",
    "Sample",
    "peak_memory_bandwidth_gbps",
]

NO_GPU_FOUND = "NVML found no NVIDIA GPU"
_CPU_WINDOW_S = 0.5  # per-core load is recomputed at most this often


class HardwareMonitor:
    """Snapshots on demand, plus a daemon sampler keeping the last history_s of Samples."""

    def __init__(
        self,
        data_dir: Path,
        models: Path | ModelStore,
        nvml: Nvml | None = None,
        interval_s: float = 2.0,
        history_s: float = 600,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"sample interval must be positive, got {interval_s} s")
        if history_s < interval_s:
            raise ValueError(f"history must cover one interval ({interval_s} s), got {history_s} s")
        self.data_dir = Path(data_dir)
        self.model_store = models if isinstance(models, ModelStore) else ModelStore(Path(models))
        self.interval_s = interval_s
        self.history_s = history_s
        self._nvml = nvml if nvml is not None else RealNvml()
        self._nvml_lock = threading.Lock()
        self._nvml_reason: str | None = None  # None: not tried yet; "": initialised
        self._gpu_count = 0
        self._driver = ("", "")
        self._static: tuple[str, int | None, int, OsInfo] | None = None
        self._cpu_lock = threading.Lock()
        self._cpu_before: Sequence[Any] | None = None
        self._cpu_at = 0.0
        self._cpu_load: tuple[float, ...] = ()
        self._history: deque[Sample] = deque(maxlen=max(1, round(history_s / interval_s)))
        self._history_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sampler_error = ""  # the last error a sampler tick hit, "" when fine

    def __enter__(self) -> HardwareMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_nvml(self) -> str:
        """Initialise NVML once; the reason it is unusable, or ""."""
        with self._nvml_lock:
            if self._nvml_reason is None:
                try:
                    self._nvml.init()
                    self._gpu_count = self._nvml.device_count()
                    self._nvml_reason = "" if self._gpu_count else NO_GPU_FOUND
                except Exception as exc:  # NvmlError, or a driver failing oddly
                    self._nvml_reason = str(exc) or type(exc).__name__
                    return self._nvml_reason
                self._driver = (
                    read_field([], "driver", self._nvml.driver_version) or "",
                    read_field([], "cuda", self._nvml.cuda_driver_version) or "",
                )
            return self._nvml_reason

    def _cpu_load_pct(self) -> tuple[float, ...]:
        """Per-core busy % since the previous reading (since boot for the very first one)."""
        with self._cpu_lock:
            now = time.monotonic()
            if self._cpu_before is None or now - self._cpu_at >= _CPU_WINDOW_S:
                after = psutil.cpu_times(percpu=True)
                before = self._cpu_before
                if before is None or len(before) != len(after):  # first reading, or CPU hotplug
                    before = [None] * len(after)
                pairs = zip(before, after, strict=True)
                self._cpu_load = tuple(cpu_busy_pct(b, a) for b, a in pairs)
                self._cpu_before, self._cpu_at = after, now
            return self._cpu_load

    def _static_facts(self) -> tuple[str, int | None, int, OsInfo]:
        if self._static is None:
            self._static = (
                read_cpu_model(),
                psutil.cpu_count(logical=False),
                psutil.cpu_count(logical=True) or 1,
                read_os(),
            )
        return self._static

    def snapshot(self) -> HardwareSnapshot:
        """Everything the Hardware page shows, read now; never raises for hardware reasons."""
        reason = self._ensure_nvml()
        gpus = () if reason else tuple(read_gpu(self._nvml, i) for i in range(self._gpu_count))
        model, physical, logical, os_info = self._static_facts()
        current_mhz, max_mhz = frequency_mhz()
        return HardwareSnapshot(
            taken_at=datetime.now(UTC),
            gpus=gpus,
            nvml_reason=reason,
            driver_version=self._driver[0],
            cuda_driver_version=self._driver[1],
            cpu=CpuInfo(model, physical, logical, current_mhz, max_mhz, self._cpu_load_pct()),
            memory=read_memory(),
            disks=(read_disk("data", self.data_dir), self._models_disk()),
            os=os_info,
        )

    def _models_disk(self) -> DiskInfo:
        store = self.model_store
        if store.path is None:
            return DiskInfo("models", None, error=store.unknown_reason)
        return read_disk("models", store.path)

    def sample_now(self) -> Sample:
        """Take one cheap Sample and append it to the history."""
        used = total = 0
        utils: list[int] = []
        per_gpu: list[NvmlMemory | None] = []
        if not self._ensure_nvml():
            for index in range(self._gpu_count):
                memory = read_field([], "memory", partial(self._nvml.memory, index))
                util = read_field([], "utilization", partial(self._nvml.utilization_pct, index))
                per_gpu.append(memory)
                if memory is not None:
                    used, total = used + memory.used_bytes, total + memory.total_bytes
                if util is not None:
                    utils.append(util[0])
        vm = psutil.virtual_memory()
        load = self._cpu_load_pct()
        sample = Sample(
            taken_at=datetime.now(UTC),
            vram_used_bytes=used,
            vram_total_bytes=total,
            gpu_util_pct=sum(utils) / len(utils) if utils else None,
            ram_used_bytes=max(vm.total - vm.available, 0),
            ram_total_bytes=vm.total,
            cpu_pct=round(sum(load) / len(load), 1) if load else 0.0,
            gpu_memory=tuple(per_gpu),
        )
        with self._history_lock:
            self._history.append(sample)
        return sample

    def history(self) -> list[Sample]:
        """The samples of the last history_s seconds, oldest first."""
        with self._history_lock:
            return list(self._history)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the daemon sampler (idempotent); the first sample is taken at once."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="hearth-hardware-sampler", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.sample_now()
                self.sampler_error = ""
            except Exception as exc:  # keep sampling; the page shows the error
                if not self.sampler_error:
                    log.warning("hardware sampler tick failed: %s", exc)
                self.sampler_error = f"sampler failed: {exc}"
            if self._stop.wait(self.interval_s):
                return

    def close(self) -> None:
        """Stop the sampler and shut NVML down (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
            self._thread = None
        with self._nvml_lock:
            if self._nvml_reason == "" or self._nvml_reason == NO_GPU_FOUND:
                try:
                    self._nvml.shutdown()
                except NvmlError as exc:
                    log.warning("NVML shutdown failed: %s", exc)
            self._nvml_reason = None
