"""The real NVML path on a machine with an NVIDIA GPU (skipped cleanly elsewhere)."""

from __future__ import annotations

import pytest

from backend.hardware.monitor import HardwareMonitor
from backend.hardware.nvml import NvmlError, RealNvml
from backend.hardware.readiness import readiness

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory):
    nvml = RealNvml()
    try:
        nvml.init()
    except NvmlError as exc:
        pytest.skip(f"NVML unavailable: {exc}")
    nvml.shutdown()
    data = tmp_path_factory.mktemp("data")
    with HardwareMonitor(data, data / "models") as monitor:
        snap = monitor.snapshot()
    if not snap.has_gpu:
        pytest.skip(f"NVML has no GPU: {snap.nvml_reason}")
    return snap


def test_driver_and_cuda_versions_present(snapshot) -> None:
    assert snapshot.driver_version
    assert snapshot.cuda_driver_version.count(".") == 1
    assert snapshot.nvml_reason == ""


def test_every_gpu_reports_consistent_memory(snapshot) -> None:
    for gpu in snapshot.gpus:
        assert gpu.name, gpu
        assert gpu.uuid.startswith(("GPU-", "MIG-")), gpu.uuid
        assert gpu.vram_total_bytes and gpu.vram_total_bytes > 1024**3
        assert gpu.vram_used_bytes is not None and gpu.vram_free_bytes is not None
        assert gpu.vram_used_bytes + gpu.vram_free_bytes == pytest.approx(
            gpu.vram_total_bytes, rel=0.05
        )


def test_bandwidth_is_plausible(snapshot) -> None:
    for gpu in snapshot.gpus:
        assert gpu.peak_memory_bandwidth_gbps is not None, gpu.errors
        assert 100 <= gpu.peak_memory_bandwidth_gbps <= 10_000, gpu


def test_live_readings_are_in_range(snapshot) -> None:
    for gpu in snapshot.gpus:
        assert gpu.gpu_util_pct is None or 0 <= gpu.gpu_util_pct <= 100
        assert gpu.temperature_c is None or 0 < gpu.temperature_c < 120
        assert gpu.power_limit_w is None or gpu.power_limit_w > 0
        for proc in gpu.processes:
            assert proc.pid > 0


def test_readiness_passes_the_gpu_rows(snapshot) -> None:
    checks = {c.name: c for c in readiness(snapshot)}
    assert checks["NVIDIA GPU"].status == "pass"
    assert checks["NVIDIA driver"].status == "pass"
    assert "CPU-only inference" not in checks
