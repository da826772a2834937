"""HardwareMonitor with the real psutil and the real NVML of whatever machine runs the tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from backend.hardware.monitor import HardwareMonitor
from backend.hardware.readiness import readiness


@pytest.fixture
def hardware(tmp_path: Path):
    with HardwareMonitor(tmp_path / "data", tmp_path / "data" / "models") as monitor:
        yield monitor


def test_psutil_values_are_sane(hardware: HardwareMonitor) -> None:
    snapshot = hardware.snapshot()
    cpu = snapshot.cpu
    assert cpu.model
    assert cpu.logical_cores >= 1
    assert cpu.physical_cores is None or 1 <= cpu.physical_cores <= cpu.logical_cores
    assert len(cpu.load_per_core_pct) == cpu.logical_cores == os.cpu_count()
    assert all(0.0 <= pct <= 100.0 for pct in cpu.load_per_core_pct)
    memory = snapshot.memory
    assert memory.total_bytes > 1024**3
    assert 0 < memory.available_bytes <= memory.total_bytes
    assert memory.used_bytes == memory.total_bytes - memory.available_bytes
    assert 0 <= memory.swap_used_bytes <= max(memory.swap_total_bytes, 0)
    for disk in snapshot.disks:
        assert disk.error == ""
        assert disk.total_bytes is not None and disk.free_bytes is not None
        assert 0 < disk.free_bytes <= disk.total_bytes
    assert snapshot.os.name and snapshot.os.kernel


def test_real_nvml_reports_its_gpus_or_says_why_there_are_none(hardware: HardwareMonitor) -> None:
    snapshot = hardware.snapshot()
    if snapshot.has_gpu:  # tests/gpu checks the figures themselves
        assert snapshot.total_vram_bytes > 0 and not snapshot.nvml_reason
        assert {c.name: c for c in readiness(snapshot)}["NVIDIA GPU"].status != "fail"
        return
    assert snapshot.nvml_reason  # e.g. "NVIDIA driver library libnvidia-ml.so.1 not found (...)"
    assert snapshot.total_vram_bytes == 0
    checks = {c.name: c for c in readiness(snapshot)}
    assert checks["NVIDIA GPU"].status == "fail"
    assert snapshot.nvml_reason in checks["NVIDIA GPU"].measured
    assert checks["CPU-only inference"].status == "warn"


def test_sampler_runs_on_the_real_machine(tmp_path: Path) -> None:
    monitor = HardwareMonitor(tmp_path, tmp_path, interval_s=0.05, history_s=1.0)
    monitor.start()
    deadline = time.monotonic() + 10
    while len(monitor.history()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    monitor.close()
    history = monitor.history()
    assert len(history) >= 3
    assert not monitor.running
    assert monitor.sampler_error == ""
    assert [s.taken_at for s in history] == sorted(s.taken_at for s in history)
    assert all(0 < s.ram_used_bytes < s.ram_total_bytes for s in history)
