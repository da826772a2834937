"""HardwareMonitor and the NVML readers against a fake NVML (the one external boundary)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from backend.hardware.monitor import (
    NO_GPU_FOUND,
    HardwareMonitor,
    cpu_busy_pct,
    read_cpu_model,
    read_disk,
    read_os,
)
from backend.hardware.nvml import NvmlProcess, peak_memory_bandwidth_gbps, read_gpu
from tests.support.fakes import FakeGpu, FakeNvml

GIB = 1024**3


def monitor(tmp_path: Path, nvml: FakeNvml, **kwargs: float) -> HardwareMonitor:
    return HardwareMonitor(tmp_path, tmp_path / "models", nvml=nvml, **kwargs)


@pytest.mark.parametrize(
    ("bus_width_bits", "clock_mhz", "expected_gbps"),
    [
        (5120, 2619, 3352.3),  # H100 SXM5, HBM3
        (5120, 1593, 2039.0),  # H100 PCIe, HBM2e
        (384, 10501, 1008.1),  # RTX 4090, GDDR6X
        (5120, 1215, 1555.2),  # A100 40GB, HBM2
    ],
)
def test_peak_bandwidth_matches_the_published_figure(
    bus_width_bits: int, clock_mhz: int, expected_gbps: float
) -> None:
    assert peak_memory_bandwidth_gbps(bus_width_bits, clock_mhz) == pytest.approx(
        expected_gbps, abs=0.1
    )


def test_no_gpus_reports_no_gpu_found(tmp_path: Path) -> None:
    snapshot = monitor(tmp_path, FakeNvml([])).snapshot()
    assert not snapshot.has_gpu
    assert snapshot.nvml_reason == NO_GPU_FOUND
    assert snapshot.driver_version == "550.54.15"  # the driver is loaded, just no GPU
    assert snapshot.total_vram_bytes == 0


def test_one_gpu_reports_every_field(tmp_path: Path) -> None:
    gpu = FakeGpu(processes=[NvmlProcess(pid=1, used_bytes=3 * GIB)])
    snapshot = monitor(tmp_path, FakeNvml([gpu])).snapshot()
    assert snapshot.has_gpu and snapshot.nvml_reason == ""
    assert (snapshot.driver_version, snapshot.cuda_driver_version) == ("550.54.15", "12.4")
    (info,) = snapshot.gpus
    assert info.name == gpu.name and info.uuid == gpu.uuid
    assert info.vram_total_bytes == 80 * GIB
    assert info.vram_used_bytes + info.vram_free_bytes == info.vram_total_bytes
    assert (info.gpu_util_pct, info.memory_util_pct) == gpu.util_pct
    assert (info.temperature_c, info.power_draw_w, info.power_limit_w) == (55, 310.5, 700.0)
    assert info.peak_memory_bandwidth_gbps == pytest.approx(3352.3, abs=0.1)
    assert [(p.pid, p.used_vram_bytes) for p in info.processes] == [(1, 3 * GIB)]
    assert info.processes[0].name  # pid 1 exists everywhere; psutil names it
    assert info.errors == ()


def test_two_gpus_add_up(tmp_path: Path) -> None:
    gpus = [FakeGpu(uuid="GPU-a"), FakeGpu(uuid="GPU-b", total_bytes=24 * GIB, used_bytes=GIB)]
    snapshot = monitor(tmp_path, FakeNvml(gpus)).snapshot()
    assert [g.index for g in snapshot.gpus] == [0, 1]
    assert [g.uuid for g in snapshot.gpus] == ["GPU-a", "GPU-b"]
    assert snapshot.total_vram_bytes == 104 * GIB
    assert snapshot.used_vram_bytes == 21 * GIB
    assert snapshot.free_vram_bytes == 83 * GIB


def test_gpu_failing_half_way_keeps_what_was_read(tmp_path: Path) -> None:
    broken = FakeGpu(broken=frozenset({"temperature_c", "power_draw_w", "memory_bus_width_bits"}))
    snapshot = monitor(tmp_path, FakeNvml([broken])).snapshot()
    (info,) = snapshot.gpus
    assert info.name == broken.name
    assert info.vram_total_bytes == 80 * GIB
    assert info.power_limit_w == 700.0
    assert info.temperature_c is None and info.power_draw_w is None
    assert info.peak_memory_bandwidth_gbps is None
    assert sorted(info.errors) == [
        "memory bus width: Not Supported",
        "power draw: Not Supported",
        "temperature: Not Supported",
    ]


def test_gpu_whose_memory_read_fails_counts_nothing(tmp_path: Path) -> None:
    snapshot = monitor(tmp_path, FakeNvml([FakeGpu(broken=frozenset({"memory"}))])).snapshot()
    assert snapshot.has_gpu
    assert snapshot.gpus[0].vram_total_bytes is None
    assert snapshot.total_vram_bytes == 0
    assert snapshot.gpus[0].errors == ("memory: Not Supported",)


def test_cpu_only_box_says_why_and_still_reports_the_rest(tmp_path: Path) -> None:
    reason = "NVIDIA driver library libnvidia-ml.so.1 not found (NVML Shared Library Not Found)"
    nvml = FakeNvml([FakeGpu()], init_error=reason)
    with monitor(tmp_path, nvml) as hw:
        snapshot = hw.snapshot()
        hw.snapshot()
    assert not snapshot.has_gpu
    assert snapshot.nvml_reason == reason
    assert nvml.init_calls == 1  # tried once, not on every refresh
    assert nvml.shutdown_calls == 0  # never initialised: nothing to shut down
    assert snapshot.cpu.logical_cores >= 1
    assert snapshot.memory.total_bytes > 0
    assert [d.label for d in snapshot.disks] == ["data", "models"]


def test_process_that_is_gone_keeps_its_pid_and_memory() -> None:
    gpu = FakeGpu(processes=[NvmlProcess(4242, 2 * GIB), NvmlProcess(7, None)])
    info = read_gpu(FakeNvml([gpu]), 0, name_of=lambda pid: "" if pid == 4242 else "ollama")
    assert [(p.pid, p.name, p.used_vram_bytes) for p in info.processes] == [
        (4242, "", 2 * GIB),
        (7, "ollama", None),
    ]


def test_history_keeps_only_the_window(tmp_path: Path) -> None:
    hw = monitor(tmp_path, FakeNvml([FakeGpu()]), interval_s=2.0, history_s=10.0)
    taken = [hw.sample_now() for _ in range(12)]
    history = hw.history()
    assert len(history) == 5  # 10 s of 2 s ticks
    assert history == taken[-5:]
    assert history[-1].vram_used_bytes == 20 * GIB
    assert history[-1].vram_total_bytes == 80 * GIB
    assert history[-1].gpu_util_pct == 42


def test_sample_without_gpu_has_no_gpu_utilisation(tmp_path: Path) -> None:
    sample = monitor(tmp_path, FakeNvml([], init_error="no driver")).sample_now()
    assert sample.gpu_util_pct is None
    assert (sample.vram_used_bytes, sample.vram_total_bytes) == (0, 0)
    assert 0 < sample.ram_used_bytes < sample.ram_total_bytes
    assert 0.0 <= sample.cpu_pct <= 100.0


def test_sampler_skips_the_expensive_reads(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(processes=[NvmlProcess(1, GIB)])])
    hw = monitor(tmp_path, nvml)
    for _ in range(3):
        hw.sample_now()
    assert nvml.memory_calls == 3
    assert nvml.process_calls == 0


def test_sampler_thread_samples_and_stops_on_close(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu()])
    hw = monitor(tmp_path, nvml, interval_s=0.01, history_s=0.05)
    got_samples = threading.Event()
    hw.start()
    thread = hw._thread
    hw.start()  # idempotent: still one thread
    assert hw._thread is thread
    for _ in range(500):
        if len(hw.history()) == 5:
            got_samples.set()
            break
        threading.Event().wait(0.01)
    hw.close()
    assert got_samples.is_set()
    assert not hw.running
    assert nvml.shutdown_calls == 1
    assert thread is not None and not thread.is_alive()


@pytest.mark.parametrize(("interval_s", "history_s"), [(0, 600), (-1, 600), (5, 1)])
def test_bad_sampler_settings_are_refused_with_the_value(
    tmp_path: Path, interval_s: float, history_s: float
) -> None:
    with pytest.raises(ValueError, match=str(interval_s if interval_s <= 0 else history_s)):
        monitor(tmp_path, FakeNvml([]), interval_s=interval_s, history_s=history_s)


def test_cpu_busy_pct_from_two_readings() -> None:
    from collections import namedtuple

    Times = namedtuple("Times", "user system idle iowait")
    assert cpu_busy_pct(Times(10, 10, 70, 10), Times(40, 20, 120, 20)) == 40.0
    assert cpu_busy_pct(Times(1, 1, 1, 1), Times(1, 1, 1, 1)) == 0.0
    assert cpu_busy_pct(None, Times(25, 25, 50, 0)) == 50.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("processor\t: 0\nmodel name\t: AMD EPYC 7763 64-Core Processor\n", "AMD EPYC 7763"),
        ("processor\t: 0\nBogoMIPS\t: 50.00\nModel\t\t: Raspberry Pi 4 Model B\n", "Raspberry"),
    ],
)
def test_cpu_model_from_cpuinfo(tmp_path: Path, text: str, expected: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert read_cpu_model(cpuinfo).startswith(expected)


def test_os_release_parsed(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text(
        'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
    )
    info = read_os(os_release)
    assert (info.name, info.os_id, info.version_id) == ("Ubuntu 22.04.4 LTS", "ubuntu", "22.04")
    assert info.kernel


def test_missing_os_release_still_names_the_system(tmp_path: Path) -> None:
    info = read_os(tmp_path / "absent")
    assert info.name and info.os_id == ""


def test_disk_of_a_directory_not_created_yet(tmp_path: Path) -> None:
    disk = read_disk("models", tmp_path / "not" / "yet" / "there")
    assert disk.error == ""
    assert disk.free_bytes is not None and disk.total_bytes is not None
    assert 0 < disk.free_bytes <= disk.total_bytes
    assert Path(disk.mount_point).is_dir()


def test_a_relative_folder_is_shown_as_an_absolute_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    disk = read_disk("models", Path("data/models"))
    assert disk.path == tmp_path / "data" / "models"
