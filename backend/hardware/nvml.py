"""NVML, NVIDIA's management library: the Nvml boundary, RealNvml over pynvml, and GpuInfo."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import psutil

T = TypeVar("T")


class NvmlError(Exception):
    """An NVML call failed; the message is a sentence a user can read."""


@dataclass(frozen=True)
class NvmlMemory:
    total_bytes: int
    used_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class NvmlProcess:
    pid: int
    used_bytes: int | None  # None where the driver does not report it


class Nvml(Protocol):
    """The NVML calls Hearth uses; GPUs are addressed by index. Every call may raise NvmlError."""

    def init(self) -> None:
        """Initialise once; raise NvmlError saying why there is no usable NVML."""
        ...

    def shutdown(self) -> None: ...

    def driver_version(self) -> str: ...

    def cuda_driver_version(self) -> str:
        """The CUDA version the driver supports, e.g. "12.4"."""
        ...

    def device_count(self) -> int: ...

    def name(self, index: int) -> str: ...

    def uuid(self, index: int) -> str: ...

    def memory(self, index: int) -> NvmlMemory: ...

    def utilization_pct(self, index: int) -> tuple[int, int]:
        """(GPU busy %, memory controller busy %) over the driver's last sample period."""
        ...

    def temperature_c(self, index: int) -> int: ...

    def power_draw_w(self, index: int) -> float: ...

    def power_limit_w(self, index: int) -> float: ...

    def memory_bus_width_bits(self, index: int) -> int: ...

    def max_memory_clock_mhz(self, index: int) -> int: ...

    def processes(self, index: int) -> list[NvmlProcess]:
        """Compute and graphics processes holding memory on this GPU, one entry per pid."""
        ...


def format_cuda_version(version: int) -> str:
    """NVML encodes CUDA 12.4 as 12040."""
    return f"{version // 1000}.{(version % 1000) // 10}"


def _reason(exc: Exception) -> str:
    """A readable sentence for why NVML is unusable, naming NVML's own message."""
    message = str(exc) or type(exc).__name__
    name = type(exc).__name__
    if "LibraryNotFound" in name:
        return f"NVIDIA driver library libnvidia-ml.so.1 not found ({message})"
    if "DriverNotLoaded" in name:
        return f"NVIDIA kernel driver is not loaded ({message})"
    if "NoPermission" in name:
        return f"no permission to query the NVIDIA driver ({message})"
    return f"NVML failed: {message}"


class RealNvml:
    """Nvml over nvidia-ml-py; pynvml is imported on init(), never at import time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pynvml: Any = None
        self._handles: dict[int, Any] = {}

    def init(self) -> None:
        with self._lock:
            if self._pynvml is not None:
                return
            try:
                import pynvml
            except ImportError as exc:
                raise NvmlError(f"nvidia-ml-py is not installed ({exc})") from exc
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                raise NvmlError(_reason(exc)) from exc
            except OSError as exc:
                raise NvmlError(f"NVIDIA driver library could not be loaded ({exc})") from exc
            self._pynvml = pynvml

    def shutdown(self) -> None:
        with self._lock:
            pynvml, self._pynvml = self._pynvml, None
            self._handles.clear()
        if pynvml is not None:
            self._call(lambda: pynvml.nvmlShutdown(), pynvml)

    def _lib(self) -> Any:
        if self._pynvml is None:
            raise NvmlError("NVML is not initialised")
        return self._pynvml

    def _call(self, fn: Callable[[], T], pynvml: Any = None) -> T:
        pynvml = pynvml or self._lib()
        try:
            return fn()
        except pynvml.NVMLError as exc:
            raise NvmlError(str(exc) or type(exc).__name__) from exc

    def _handle(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            lib = self._lib()
            handle = self._call(lambda: lib.nvmlDeviceGetHandleByIndex(index))
            self._handles[index] = handle
        return handle

    def _device(self, index: int, fn: Callable[[Any, Any], T]) -> T:
        lib = self._lib()
        handle = self._handle(index)
        return self._call(lambda: fn(lib, handle))

    def driver_version(self) -> str:
        lib = self._lib()
        return str(self._call(lib.nvmlSystemGetDriverVersion))

    def cuda_driver_version(self) -> str:
        lib = self._lib()
        return format_cuda_version(int(self._call(lib.nvmlSystemGetCudaDriverVersion)))

    def device_count(self) -> int:
        lib = self._lib()
        return int(self._call(lib.nvmlDeviceGetCount))

    def name(self, index: int) -> str:
        return str(self._device(index, lambda lib, h: lib.nvmlDeviceGetName(h)))

    def uuid(self, index: int) -> str:
        return str(self._device(index, lambda lib, h: lib.nvmlDeviceGetUUID(h)))

    def memory(self, index: int) -> NvmlMemory:
        info = self._device(index, lambda lib, h: lib.nvmlDeviceGetMemoryInfo(h))
        return NvmlMemory(int(info.total), int(info.used), int(info.free))

    def utilization_pct(self, index: int) -> tuple[int, int]:
        rates = self._device(index, lambda lib, h: lib.nvmlDeviceGetUtilizationRates(h))
        return int(rates.gpu), int(rates.memory)

    def temperature_c(self, index: int) -> int:
        return int(
            self._device(
                index, lambda lib, h: lib.nvmlDeviceGetTemperature(h, lib.NVML_TEMPERATURE_GPU)
            )
        )

    def power_draw_w(self, index: int) -> float:
        return self._device(index, lambda lib, h: lib.nvmlDeviceGetPowerUsage(h)) / 1000

    def power_limit_w(self, index: int) -> float:
        return self._device(index, lambda lib, h: lib.nvmlDeviceGetEnforcedPowerLimit(h)) / 1000

    def memory_bus_width_bits(self, index: int) -> int:
        return int(self._device(index, lambda lib, h: lib.nvmlDeviceGetMemoryBusWidth(h)))

    def max_memory_clock_mhz(self, index: int) -> int:
        return int(
            self._device(index, lambda lib, h: lib.nvmlDeviceGetMaxClockInfo(h, lib.NVML_CLOCK_MEM))
        )

    def processes(self, index: int) -> list[NvmlProcess]:
        compute = self._device(index, lambda lib, h: lib.nvmlDeviceGetComputeRunningProcesses(h))
        graphics = self._device(index, lambda lib, h: lib.nvmlDeviceGetGraphicsRunningProcesses(h))
        by_pid: dict[int, NvmlProcess] = {}
        for proc in [*compute, *graphics]:
            pid = int(proc.pid)
            used = proc.usedGpuMemory
            known = by_pid.get(pid)
            if known is None or (known.used_bytes is None and used is not None):
                by_pid[pid] = NvmlProcess(pid, None if used is None else int(used))
        return list(by_pid.values())


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str  # "" when the process is gone or not ours to see
    used_vram_bytes: int | None  # None where the driver does not report it


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML saw it; a field is None where its read failed (see errors)."""

    index: int
    name: str = ""
    uuid: str = ""
    vram_total_bytes: int | None = None
    vram_used_bytes: int | None = None
    vram_free_bytes: int | None = None
    gpu_util_pct: int | None = None
    memory_util_pct: int | None = None
    temperature_c: int | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    memory_bus_width_bits: int | None = None
    max_memory_clock_mhz: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    errors: tuple[str, ...] = ()  # "temperature: Not Supported", one per failed read

    @property
    def peak_memory_bandwidth_gbps(self) -> float | None:
        if self.memory_bus_width_bits is None or self.max_memory_clock_mhz is None:
            return None
        return peak_memory_bandwidth_gbps(self.memory_bus_width_bits, self.max_memory_clock_mhz)


def peak_memory_bandwidth_gbps(bus_width_bits: int, max_memory_clock_mhz: int) -> float:
    """Bytes per transfer x NVML's memory clock x 2 transfers per clock, in GB/s.

    NVML reports the clock such that the factor is 2 for HBM and GDDR alike:
    H100 SXM 5120 bit x 2619 MHz = 3352 GB/s, RTX 4090 384 bit x 10501 MHz = 1008 GB/s.
    """
    return bus_width_bits / 8 * max_memory_clock_mhz * 2 / 1000


def read_field(errors: list[str], what: str, fn: Callable[[], T]) -> T | None:
    """One NVML read; a failure is recorded in errors and yields None."""
    try:
        return fn()
    except Exception as exc:  # NVML and drivers fail in many ways; none may reach the page
        errors.append(f"{what}: {exc}")
        return None


def process_name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, OSError):
        return ""


def read_gpu(nvml: Nvml, index: int, name_of: Callable[[int], str] = process_name) -> GpuInfo:
    """Everything NVML will tell about one GPU; what fails is listed in errors."""
    errors: list[str] = []
    memory = read_field(errors, "memory", lambda: nvml.memory(index))
    util = read_field(errors, "utilization", lambda: nvml.utilization_pct(index))
    procs = read_field(errors, "processes", lambda: nvml.processes(index)) or []
    return GpuInfo(
        index=index,
        name=read_field(errors, "name", lambda: nvml.name(index)) or "",
        uuid=read_field(errors, "uuid", lambda: nvml.uuid(index)) or "",
        vram_total_bytes=memory.total_bytes if memory else None,
        vram_used_bytes=memory.used_bytes if memory else None,
        vram_free_bytes=memory.free_bytes if memory else None,
        gpu_util_pct=util[0] if util else None,
        memory_util_pct=util[1] if util else None,
        temperature_c=read_field(errors, "temperature", lambda: nvml.temperature_c(index)),
        power_draw_w=read_field(errors, "power draw", lambda: nvml.power_draw_w(index)),
        power_limit_w=read_field(errors, "power limit", lambda: nvml.power_limit_w(index)),
        memory_bus_width_bits=read_field(
            errors, "memory bus width", lambda: nvml.memory_bus_width_bits(index)
        ),
        max_memory_clock_mhz=read_field(
            errors, "max memory clock", lambda: nvml.max_memory_clock_mhz(index)
        ),
        processes=tuple(
            GpuProcess(p.pid, name_of(p.pid), p.used_bytes)
            for p in sorted(procs, key=lambda p: -(p.used_bytes or 0))
        ),
        errors=tuple(errors),
    )
