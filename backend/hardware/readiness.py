"""Is this box fit for local inference? A checklist computed from one HardwareSnapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.hardware.monitor import HardwareSnapshot
from backend.units import GB, format_both, format_spec_gb

Status = Literal["pass", "warn", "fail"]

# Thresholds are the product spec's, in the decimal GB that cards and DIMMs are sold in; the page
# shows them and the readings in GiB too, as the Hardware cards do.
MIN_VRAM_BYTES = 8 * GB
MIN_RAM_BYTES = 16 * GB
RECOMMENDED_RAM_BYTES = 32 * GB
MIN_MODEL_DISK_FREE_BYTES = 50 * GB
SUPPORTED_OS_MIN_VERSIONS = {"ubuntu": (20, 4), "debian": (11,)}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    measured: str
    requirement: str


def readiness(snapshot: HardwareSnapshot) -> list[Check]:
    """The checklist rows, in the order the page shows them."""
    checks = [
        _gpu_present(snapshot),
        _driver(snapshot),
        _vram(snapshot),
        _ram(snapshot),
        _model_disk(snapshot),
        _os(snapshot),
    ]
    if not snapshot.has_gpu:
        ram = format_both(snapshot.memory.total_bytes)
        checks.append(
            Check(
                "CPU-only inference",
                "warn",
                f"{snapshot.cpu.logical_cores} CPU threads, {ram} RAM",
                "an NVIDIA GPU: CPU-only inference runs 7-8B models at about 1-2 tokens/s",
            )
        )
    return checks


def _gpu_present(snapshot: HardwareSnapshot) -> Check:
    requirement = "an NVIDIA GPU that NVML can see"
    if not snapshot.has_gpu:
        return Check("NVIDIA GPU", "fail", f"none: {snapshot.nvml_reason}", requirement)
    names = ", ".join(g.name or f"GPU {g.index}" for g in snapshot.gpus)
    return Check("NVIDIA GPU", "pass", f"{len(snapshot.gpus)}: {names}", requirement)


def _driver(snapshot: HardwareSnapshot) -> Check:
    requirement = "NVIDIA driver loaded"
    if snapshot.driver_version:
        cuda = f" (CUDA {snapshot.cuda_driver_version})" if snapshot.cuda_driver_version else ""
        return Check("NVIDIA driver", "pass", f"{snapshot.driver_version}{cuda}", requirement)
    reason = snapshot.nvml_reason or "NVML did not report a driver version"
    return Check("NVIDIA driver", "fail", f"not loaded: {reason}", requirement)


def _vram(snapshot: HardwareSnapshot) -> Check:
    requirement = f">= {format_spec_gb(MIN_VRAM_BYTES)} of GPU memory"
    if not snapshot.has_gpu:
        return Check("GPU memory", "fail", "no GPU", requirement)
    total = snapshot.total_vram_bytes
    measured = f"{format_both(total)} on {len(snapshot.gpus)} GPU(s)"
    if any(g.vram_total_bytes is None for g in snapshot.gpus):
        measured += " (some GPUs did not report memory)"
    return Check("GPU memory", "pass" if total >= MIN_VRAM_BYTES else "fail", measured, requirement)


def _ram(snapshot: HardwareSnapshot) -> Check:
    total = snapshot.memory.total_bytes
    requirement = (
        f">= {format_spec_gb(MIN_RAM_BYTES)}; {format_spec_gb(RECOMMENDED_RAM_BYTES)} recommended"
    )
    if total < MIN_RAM_BYTES:
        status: Status = "fail"
    elif total < RECOMMENDED_RAM_BYTES:
        status = "warn"
    else:
        status = "pass"
    return Check("System memory", status, format_both(total), requirement)


def _model_disk(snapshot: HardwareSnapshot) -> Check:
    requirement = f">= {format_spec_gb(MIN_MODEL_DISK_FREE_BYTES)} free for models"
    disk = snapshot.disk("models")
    if disk is not None and disk.path is None:  # the engine keeps them on another machine
        return Check("Disk for models", "warn", f"not measured here: {disk.error}", requirement)
    if disk is None or disk.free_bytes is None:
        why = disk.error if disk is not None else "no model directory configured"
        return Check("Disk for models", "fail", f"unknown: {why}", requirement)
    measured = f"{format_both(disk.free_bytes)} free at {disk.path}"
    ok = disk.free_bytes >= MIN_MODEL_DISK_FREE_BYTES
    return Check("Disk for models", "pass" if ok else "fail", measured, requirement)


def _version_tuple(version_id: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in version_id.split("."))
    except ValueError:
        return None


def _os(snapshot: HardwareSnapshot) -> Check:
    os_info = snapshot.os
    requirement = "Ubuntu 20.04+ or Debian 11+ (others may work, untested)"
    measured = f"{os_info.name or 'unknown'} (kernel {os_info.kernel})"
    minimum = SUPPORTED_OS_MIN_VERSIONS.get(os_info.os_id)
    version = _version_tuple(os_info.version_id)
    ok = minimum is not None and version is not None and version >= minimum
    return Check("Operating system", "pass" if ok else "warn", measured, requirement)
