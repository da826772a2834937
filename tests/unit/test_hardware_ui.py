"""The Hardware tab's handlers, built inside real Blocks over real Services and a fake NVML."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from backend.auth import CLI
from backend.engines.ollama import OllamaEngine
from backend.hardware.nvml import NvmlProcess
from backend.services import Services
from tests.support.fakes import FakeGpu, FakeNvml
from tests.support.ui_services import services_on
from ui import hardware as hardware_tab

GIB = 1024**3

NO_LIBRARY = "NVIDIA driver library libnvidia-ml.so.1 not found (NVML Shared Library Not Found)"


@pytest.fixture
def cpu_only(tmp_path: Path) -> Services:
    nvml = FakeNvml([], init_error=NO_LIBRARY)
    return services_on(tmp_path, nvml)


@pytest.fixture
def two_gpus(tmp_path: Path) -> Services:
    gpus = [
        FakeGpu(processes=[NvmlProcess(1, 5 * GIB)]),
        FakeGpu(name="NVIDIA GeForce RTX 4090 <script>", uuid="GPU-b", total_bytes=24 * GIB),
    ]
    services = services_on(tmp_path, FakeNvml(gpus))
    services.engine.load("smollm2:135m", 2048)
    return services


def built(services: Services) -> gr.Blocks:
    with gr.Blocks() as demo, gr.Tabs():
        with gr.Tab("Chat"):
            gr.Markdown("chat")
        with gr.Tab("Hardware"):
            hardware_tab.build(services)
    return demo


def hardware_events(demo: gr.Blocks) -> list:
    return [f for f in demo.fns.values() if f.name in ("on_tick", "on_show")]


def test_cpu_only_page_says_no_nvidia_gpu_and_why(cpu_only: Services) -> None:
    built(cpu_only)
    cards, checklist, capacity, vram, gpu, ram, cpu = hardware_tab.page_values(cpu_only)
    assert "No NVIDIA GPU" in cards
    assert NO_LIBRARY in cards
    assert "FAIL" in checklist and "1-2 tokens/s" in checklist
    assert "What this box can run" in capacity
    assert "Llama 3 8B" in capacity and "Llama 3 70B" in capacity
    assert 'class="badge cpu">CPU only' in capacity
    assert vram.visible is False and gpu.visible is False  # no GPU: its plots are hidden
    assert isinstance(ram, pd.DataFrame) and isinstance(cpu, pd.DataFrame)


def test_gpu_page_shows_each_gpu_escaped(two_gpus: Services) -> None:
    cards, checklist, *_ = hardware_tab.page_values(two_gpus)
    assert "No NVIDIA GPU" not in cards
    assert "GPU 0 · NVIDIA H100 80GB HBM3" in cards
    assert "RTX 4090 &lt;script&gt;" in cards and "<script>" not in cards
    assert "3352 GB/s" in cards
    assert "5.0 GiB" in cards  # the process holding GPU memory
    assert "llama.cpp in-process" in cards
    assert "none (runs on CPU)" in cards
    assert "<th>Expires</th>" in cards and "never" in cards  # the embedded engine keeps it
    assert "PASS" in checklist


def test_gpu_page_says_what_fits_on_the_gpu(two_gpus: Services) -> None:
    *_, capacity, _vram, _gpu, _ram, _cpu = hardware_tab.page_values(two_gpus)
    assert 'class="badge full">full GPU offload' in capacity  # 8B Q4_K_M in 99 GiB free
    assert "up to" in capacity and "tok/s" in capacity


def test_engine_down_is_a_sentence_not_an_exception(tmp_path: Path, refused_ollama_host) -> None:
    services = services_on(tmp_path, FakeNvml([]), OllamaEngine(refused_ollama_host))
    cards, *_ = hardware_tab.page_values(services)
    assert f"Ollama is not reachable at {refused_ollama_host}" in cards


def test_history_plots_follow_the_samples(two_gpus: Services) -> None:
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


def test_broken_monitor_shows_a_readable_error(cpu_only: Services) -> None:
    class Broken:
        interval_s = 2.0

        def snapshot(self) -> None:
            raise RuntimeError("psutil is confused")

    cpu_only.hardware = Broken()  # type: ignore[assignment]
    cards, *_ = hardware_tab.page_values(cpu_only)
    assert "Could not read the hardware: psutil is confused" in cards


def signed_in(services: Services, name: str = "viewer") -> gr.Request:
    services.users.add_user(CLI, name, "viewer-pass-123", "staff")
    return gr.Request(username=name)


def test_events_are_private_and_pause_off_screen(cpu_only: Services) -> None:
    demo = built(cpu_only)
    request = signed_in(cpu_only)
    events = hardware_events(demo)
    assert sorted(f.name for f in events) == ["on_show", "on_tick"]
    assert all(f.api_visibility == "private" for f in events)
    on_tick = next(f for f in events if f.name == "on_tick")
    assert on_tick.js  # the browser reports whether the tab is on screen
    timer, *rest = on_tick.fn(False, request)
    assert isinstance(timer, gr.Timer) and timer.active is False
    assert all(isinstance(r, type(gr.skip())) for r in rest)
    timer, cards, *_ = on_tick.fn(True, request)
    assert "No NVIDIA GPU" in cards
    on_show = next(f for f in events if f.name == "on_show")
    timer, cards, *_ = on_show.fn(request)
    assert timer.active is True and "No NVIDIA GPU" in cards


def test_a_disabled_users_page_stops_and_shows_nothing_new(cpu_only: Services) -> None:
    events = {f.name: f for f in hardware_events(built(cpu_only))}
    request = signed_in(cpu_only)
    cpu_only.users.set_disabled(CLI, "viewer", True)
    with pytest.warns(UserWarning, match="Sign in first"):
        timer, *rest = events["on_tick"].fn(True, request)
    assert timer.active is False
    assert all(isinstance(r, type(gr.skip())) for r in rest)
    with pytest.warns(UserWarning, match="Sign in first"):
        timer, *rest = events["on_show"].fn(request)
    assert timer.active is False and all(isinstance(r, type(gr.skip())) for r in rest)


def test_outside_a_tab_the_timer_never_pauses(cpu_only: Services) -> None:
    with gr.Blocks() as demo:
        hardware_tab.build(cpu_only)
    (on_tick,) = hardware_events(demo)
    assert not on_tick.js
    _, cards, *_ = on_tick.fn(False, signed_in(cpu_only))
    assert "No NVIDIA GPU" in cards


@pytest.mark.parametrize(
    ("offset_s", "expected"),
    [(None, "never"), (300, "in 5 min"), (20, "in 20 s"), (-5, "in 0 s")],
)
def test_expiry_reads_as_time_left(offset_s: float | None, expected: str) -> None:
    from datetime import UTC, datetime, timedelta

    from ui.common import format_expiry

    iso = "" if offset_s is None else (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()
    assert format_expiry(iso).replace("in 19 s", "in 20 s") == expected


def test_an_unreadable_expiry_is_shown_as_it_came() -> None:
    from ui.common import format_expiry

    assert format_expiry("sometime soon") == "sometime soon"
