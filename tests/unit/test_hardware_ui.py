"""The Hardware tab's handlers, built inside real Blocks with a stand-in services object."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from backend.engines.base import EngineStatus, LoadedModel
from backend.hardware import HardwareMonitor
from backend.nvml import NvmlProcess
from tests.unit.test_hardware import FakeGpu, FakeNvml
from ui import hardware as hardware_tab

GIB = 1024**3
# Gradio 6.31's LinePlot calls pandas APIs that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

NO_LIBRARY = "NVIDIA driver library libnvidia-ml.so.1 not found (NVML Shared Library Not Found)"


class StandInServices:
    """Just what the Hardware tab reaches for: services.hardware, engine status, loaded models."""

    def __init__(self, hardware: HardwareMonitor, engine_error: str = "") -> None:
        self.hardware = hardware
        self.engine_error = engine_error

    def engine_status(self) -> EngineStatus:
        if self.engine_error:
            raise ConnectionError(self.engine_error)
        return EngineStatus("embedded", True, "llama.cpp <b>in-process</b>", "0.3.36")

    def loaded_models(self) -> list[LoadedModel]:
        if self.engine_error:
            raise ConnectionError(self.engine_error)
        return [LoadedModel("smollm2:135m", 300 * 1024**2, 0, 2048)]


@pytest.fixture
def cpu_only(tmp_path: Path) -> StandInServices:
    nvml = FakeNvml([], init_error=NO_LIBRARY)
    return StandInServices(HardwareMonitor(tmp_path, tmp_path / "models", nvml=nvml))


@pytest.fixture
def two_gpus(tmp_path: Path) -> StandInServices:
    gpus = [
        FakeGpu(processes=[NvmlProcess(1, 5 * GIB)]),
        FakeGpu(name="NVIDIA GeForce RTX 4090 <script>", uuid="GPU-b", total_bytes=24 * GIB),
    ]
    hardware = HardwareMonitor(tmp_path, tmp_path / "models", nvml=FakeNvml(gpus))
    return StandInServices(hardware)


def built(services: StandInServices) -> gr.Blocks:
    with gr.Blocks() as demo, gr.Tabs():
        with gr.Tab("Chat"):
            gr.Markdown("chat")
        with gr.Tab("Hardware"):
            hardware_tab.build(services)
    return demo


def hardware_events(demo: gr.Blocks) -> list:
    return [f for f in demo.fns.values() if f.name in ("on_tick", "on_show")]


def test_cpu_only_page_says_no_nvidia_gpu_and_why(cpu_only: StandInServices) -> None:
    built(cpu_only)
    cards, checklist, capacity, vram, gpu, ram, cpu = hardware_tab.page_values(cpu_only)
    assert "No NVIDIA GPU" in cards
    assert NO_LIBRARY in cards
    assert "FAIL" in checklist and "1-2 tokens/s" in checklist
    assert capacity == ""  # the "What this box can run" table is not filled in yet
    assert vram.visible is False and gpu.visible is False  # no GPU: its plots are hidden
    assert isinstance(ram, pd.DataFrame) and isinstance(cpu, pd.DataFrame)


def test_gpu_page_shows_each_gpu_escaped(two_gpus: StandInServices) -> None:
    cards, checklist, *_ = hardware_tab.page_values(two_gpus)
    assert "No NVIDIA GPU" not in cards
    assert "GPU 0 · NVIDIA H100 80GB HBM3" in cards
    assert "RTX 4090 &lt;script&gt;" in cards and "<script>" not in cards
    assert "3352 GB/s" in cards
    assert "5.0 GiB" in cards  # the process holding GPU memory
    assert "llama.cpp &lt;b&gt;in-process&lt;/b&gt;" in cards
    assert "none (runs on CPU)" in cards
    assert "PASS" in checklist


def test_engine_failure_is_a_sentence_not_an_exception(tmp_path: Path) -> None:
    services = StandInServices(
        HardwareMonitor(tmp_path, tmp_path, nvml=FakeNvml([])), engine_error="refused on 11434"
    )
    cards, *_ = hardware_tab.page_values(services)
    assert "Could not read the engine status: refused on 11434" in cards
    assert "Could not read the loaded models: refused on 11434" in cards


def test_history_plots_follow_the_samples(two_gpus: StandInServices) -> None:
    for _ in range(3):
        two_gpus.hardware.sample_now()
    *_, vram, gpu, ram, cpu = hardware_tab.page_values(two_gpus)
    plot = vram.value  # the gr.LinePlot update carries the frame as Gradio sends it
    frame = pd.DataFrame(plot["data"], columns=plot["columns"])
    assert set(frame["series"]) == {"used", "total"}
    assert len(frame) == 6
    assert frame[frame["series"] == "total"]["GiB"].iloc[-1] == pytest.approx(104.0)
    assert len(ram) == 6 and len(cpu) == 3
    busy = pd.DataFrame(gpu.value["data"], columns=gpu.value["columns"])
    assert list(busy["%"]) == [42.0] * 3  # mean of both fake GPUs at 42 %


def test_broken_monitor_shows_a_readable_error(cpu_only: StandInServices) -> None:
    class Broken:
        interval_s = 2.0

        def snapshot(self) -> None:
            raise RuntimeError("psutil is confused")

    cpu_only.hardware = Broken()  # type: ignore[assignment]
    cards, *_ = hardware_tab.page_values(cpu_only)
    assert "Could not read the hardware: psutil is confused" in cards


def test_events_are_private_and_pause_off_screen(cpu_only: StandInServices) -> None:
    demo = built(cpu_only)
    events = hardware_events(demo)
    assert sorted(f.name for f in events) == ["on_show", "on_tick"]
    assert all(f.api_visibility == "private" for f in events)
    on_tick = next(f for f in events if f.name == "on_tick")
    assert on_tick.js  # the browser reports whether the tab is on screen
    timer, *rest = on_tick.fn(False)
    assert isinstance(timer, gr.Timer) and timer.active is False
    assert all(isinstance(r, type(gr.skip())) for r in rest)
    timer, cards, *_ = on_tick.fn(True)
    assert "No NVIDIA GPU" in cards
    on_show = next(f for f in events if f.name == "on_show")
    timer, cards, *_ = on_show.fn()
    assert timer.active is True and "No NVIDIA GPU" in cards


def test_outside_a_tab_the_timer_never_pauses(cpu_only: StandInServices) -> None:
    with gr.Blocks() as demo:
        hardware_tab.build(cpu_only)
    (on_tick,) = hardware_events(demo)
    assert not on_tick.js
    _, cards, *_ = on_tick.fn(False)
    assert "No NVIDIA GPU" in cards
