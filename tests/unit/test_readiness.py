"""The readiness checklist: each row's verdict at and around its threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend.hardware.monitor import (
    CpuInfo,
    DiskInfo,
    GpuInfo,
    HardwareSnapshot,
    MemoryInfo,
    OsInfo,
)
from backend.hardware.readiness import Check, readiness
from backend.units import GB

NO_LIBRARY = "NVIDIA driver library libnvidia-ml.so.1 not found (NVML Shared Library Not Found)"


def gpu(index: int = 0, vram_total_bytes: int | None = 80 * GB) -> GpuInfo:
    return GpuInfo(index=index, name="NVIDIA H100 80GB HBM3", vram_total_bytes=vram_total_bytes)


def snapshot(
    gpus: tuple[GpuInfo, ...] = (gpu(),),
    ram_bytes: int = 64 * GB,
    model_disk_free_bytes: int | None = 500 * GB,
    os_id: str = "ubuntu",
    version_id: str = "22.04",
) -> HardwareSnapshot:
    has_gpu = bool(gpus)
    return HardwareSnapshot(
        taken_at=datetime.now(UTC),
        gpus=gpus,
        nvml_reason="" if has_gpu else NO_LIBRARY,
        driver_version="550.54.15" if has_gpu else "",
        cuda_driver_version="12.4" if has_gpu else "",
        cpu=CpuInfo("AMD EPYC 7763", 8, 16, 2450.0, 3500.0, (5.0,) * 16),
        memory=MemoryInfo(ram_bytes, ram_bytes // 2, ram_bytes // 2, 0, 0),
        disks=(
            DiskInfo("data", Path("/srv/hearth"), "/", 1000 * GB, 0, 1000 * GB),
            DiskInfo(
                "models",
                Path("/srv/models"),
                "/srv",
                1000 * GB,
                None,
                model_disk_free_bytes,
                "" if model_disk_free_bytes is not None else "cannot read free space",
            ),
        ),
        os=OsInfo(f"{os_id} {version_id}", os_id, version_id, "6.8.0"),
    )


def row(checks: list[Check], name: str) -> Check:
    matches = [c for c in checks if c.name == name]
    assert len(matches) == 1, f"expected one {name!r} row in {[c.name for c in checks]}"
    return matches[0]


def test_a_good_gpu_box_passes_everything() -> None:
    checks = readiness(snapshot())
    assert [c.status for c in checks] == ["pass"] * 6
    assert "H100" in row(checks, "NVIDIA GPU").measured
    assert row(checks, "NVIDIA driver").measured == "550.54.15 (CUDA 12.4)"
    assert not any(c.name == "CPU-only inference" for c in checks)


def test_cpu_only_box_fails_gpu_rows_with_the_reason_and_warns_about_speed() -> None:
    checks = readiness(snapshot(gpus=()))
    assert row(checks, "NVIDIA GPU").status == "fail"
    assert NO_LIBRARY in row(checks, "NVIDIA GPU").measured
    assert row(checks, "NVIDIA driver").status == "fail"
    assert row(checks, "GPU memory").status == "fail"
    cpu_only = row(checks, "CPU-only inference")
    assert cpu_only.status == "warn"
    assert "1-2 tokens/s" in cpu_only.requirement
    assert "16 CPU threads" in cpu_only.measured


@pytest.mark.parametrize(
    ("vram_per_gpu", "n_gpus", "status"),
    [(8 * GB, 1, "pass"), (8 * GB - 1, 1, "fail"), (6 * GB, 2, "pass"), (4 * GB, 1, "fail")],
)
def test_vram_threshold_counts_every_gpu(vram_per_gpu: int, n_gpus: int, status: str) -> None:
    gpus = tuple(gpu(i, vram_per_gpu) for i in range(n_gpus))
    check = row(readiness(snapshot(gpus=gpus)), "GPU memory")
    assert check.status == status
    assert f"({n_gpus * vram_per_gpu / GB:.1f} GB) on {n_gpus} GPU(s)" in check.measured


def test_gpu_that_did_not_report_memory_is_flagged() -> None:
    check = row(readiness(snapshot(gpus=(gpu(0), gpu(1, None)))), "GPU memory")
    assert "did not report" in check.measured


@pytest.mark.parametrize(
    ("ram_bytes", "status"),
    [(8 * GB, "fail"), (16 * GB, "warn"), (31 * GB, "warn"), (32 * GB, "pass")],
)
def test_ram_thresholds(ram_bytes: int, status: str) -> None:
    check = row(readiness(snapshot(ram_bytes=ram_bytes)), "System memory")
    assert check.status == status
    assert check.measured == f"{ram_bytes / 1024**3:.1f} GiB ({ram_bytes / GB:.1f} GB)"


def test_readings_are_in_gib_like_the_cards_and_the_spec_minimums_stay_in_gb() -> None:
    """The cards read in GiB; the spec says GB: each row gives both, the spec's number first."""
    checks = readiness(snapshot(ram_bytes=25_300_000_000, model_disk_free_bytes=60 * GB))
    ram = row(checks, "System memory")
    assert ram.measured == "23.6 GiB (25.3 GB)"
    assert ram.requirement == ">= 16 GB (14.9 GiB); 32 GB (29.8 GiB) recommended"
    assert row(checks, "GPU memory").requirement == ">= 8 GB (7.5 GiB) of GPU memory"
    disk = row(checks, "Disk for models")
    assert disk.measured == "55.9 GiB (60.0 GB) free at /srv/models"
    assert disk.requirement == ">= 50 GB (46.6 GiB) free for models"
    cpu_only = row(readiness(snapshot(gpus=(), ram_bytes=16 * GB)), "CPU-only inference")
    assert cpu_only.measured == "16 CPU threads, 14.9 GiB (16.0 GB) RAM"


@pytest.mark.parametrize(("free_bytes", "status"), [(50 * GB, "pass"), (49 * GB, "fail")])
def test_model_disk_threshold(free_bytes: int, status: str) -> None:
    check = row(readiness(snapshot(model_disk_free_bytes=free_bytes)), "Disk for models")
    assert check.status == status
    assert "/srv/models" in check.measured


def test_unreadable_model_disk_fails_with_the_error() -> None:
    check = row(readiness(snapshot(model_disk_free_bytes=None)), "Disk for models")
    assert check.status == "fail"
    assert "cannot read free space" in check.measured


def test_models_on_a_remote_ollama_are_a_warning_that_says_where() -> None:
    remote = DiskInfo("models", None, error="kept by the Ollama server at http://gpu-box:11434")
    base = snapshot()
    check = row(readiness(replace(base, disks=(base.disks[0], remote))), "Disk for models")
    assert check.status == "warn"
    assert "not measured here" in check.measured and "gpu-box" in check.measured


@pytest.mark.parametrize(
    ("os_id", "version_id", "status"),
    [
        ("ubuntu", "20.04", "pass"),
        ("ubuntu", "24.04", "pass"),
        ("ubuntu", "18.04", "warn"),
        ("debian", "11", "pass"),
        ("debian", "10", "warn"),
        ("fedora", "40", "warn"),
        ("ubuntu", "", "warn"),
    ],
)
def test_os_support(os_id: str, version_id: str, status: str) -> None:
    check = row(readiness(snapshot(os_id=os_id, version_id=version_id)), "Operating system")
    assert check.status == status
    assert "kernel 6.8.0" in check.measured


def test_no_gpu_reason_absent_still_explains_missing_driver() -> None:
    snap = replace(snapshot(), driver_version="", nvml_reason="")
    check = row(readiness(snap), "NVIDIA driver")
    assert check.status == "fail" and "did not report" in check.measured
