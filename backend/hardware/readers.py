"""Readers of this machine's CPU, memory, disk and OS facts (psutil and /proc, /etc files)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psutil

from backend.hardware.values import DiskInfo, MemoryInfo, OsInfo


def cpu_busy_pct(before: Any | None, after: Any) -> float:
    """Busy share of the time between two psutil cpu_times readings (before None: since boot)."""

    def split(times: Any) -> tuple[float, float]:
        fields: dict[str, float] = times._asdict()
        # Linux counts guest time inside user time already.
        total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
        return total, fields.get("idle", 0.0) + fields.get("iowait", 0.0)

    total_after, idle_after = split(after)
    total_before, idle_before = split(before) if before is not None else (0.0, 0.0)
    elapsed = total_after - total_before
    if elapsed <= 0:
        return 0.0
    busy = 100.0 * (1.0 - (idle_after - idle_before) / elapsed)
    return round(min(max(busy, 0.0), 100.0), 1)


def read_cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name: /proc/cpuinfo on Linux (x86 and ARM), else platform."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def read_os(os_release: Path = Path("/etc/os-release")) -> OsInfo:
    fields: dict[str, str] = {}
    try:
        lines = os_release.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            fields[key.strip()] = value.strip().strip("\"'")
    name = fields.get("PRETTY_NAME") or " ".join(
        v for v in (fields.get("NAME", platform.system()), fields.get("VERSION", "")) if v
    )
    return OsInfo(
        name=name,
        os_id=fields.get("ID", "").lower(),
        version_id=fields.get("VERSION_ID", ""),
        kernel=platform.release(),
    )


def read_memory() -> MemoryInfo:
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MemoryInfo(
        total_bytes=vm.total,
        available_bytes=vm.available,
        used_bytes=max(vm.total - vm.available, 0),
        swap_total_bytes=swap.total,
        swap_used_bytes=swap.used,
    )


def read_disk(label: str, path: Path) -> DiskInfo:
    """Free space where path lives (or will live: the nearest existing parent)."""
    path = Path(os.path.abspath(path))  # shown to admins: "data/models" says too little
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    mount = probe
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        usage = psutil.disk_usage(str(probe))
    except OSError as exc:
        return DiskInfo(label, path, str(mount), error=f"cannot read free space at {probe}: {exc}")
    return DiskInfo(label, path, str(mount), usage.total, usage.used, usage.free)


def frequency_mhz() -> tuple[float | None, float | None]:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        return None, None
    if freq is None:
        return None, None
    return (freq.current or None), (freq.max or None)
