"""The Hardware tab's handlers, called directly over real Services and a fake NVML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.auth import CLI
from backend.hardware.nvml import NvmlProcess
from backend.services import Services
from tests.support.fakes import GIB, FakeGpu, FakeNvml
from tests.support.ui_services import StubRequest, services_on
from ui.hardware.handlers import HardwareHandlers, Refresh
from ui.tables import Html, html_table

VIEWER = StubRequest("viewer")


@pytest.fixture
def cpu_only(tmp_path: Path) -> Iterator[Services]:
    services = services_on(tmp_path, FakeNvml([], init_error="no driver here"))
    services.users.add_user(CLI, "viewer", "viewer-pass-123", "staff")
    yield services
    services.close()


@pytest.fixture
def one_gpu(tmp_path: Path) -> Iterator[Services]:
    gpu = FakeGpu(name="NVIDIA <b>L4</b>", processes=[NvmlProcess(7, 3 * GIB)])
    services = services_on(tmp_path, FakeNvml([gpu]))
    services.users.add_user(CLI, "viewer", "viewer-pass-123", "staff")
    yield services
    services.close()


def test_a_disabled_users_refresh_is_empty_and_stops(cpu_only: Services) -> None:
    handlers = HardwareHandlers(cpu_only)
    cpu_only.users.set_disabled(CLI, "viewer", True)
    stopped = Refresh(None, timer_active=False, warning="Sign in first.")
    assert handlers.tick(VIEWER, shown=True) == stopped
    assert handlers.show(VIEWER) == stopped


def test_an_anonymous_caller_gets_nothing(cpu_only: Services) -> None:
    handlers = HardwareHandlers(cpu_only)
    assert handlers.tick(StubRequest(None), shown=True).page is None
    assert handlers.show(StubRequest(None)).warning == "Sign in first."


def test_off_screen_ticks_pause_without_a_warning(cpu_only: Services) -> None:
    assert HardwareHandlers(cpu_only).tick(VIEWER, shown=False) == Refresh(None, False)


def test_outside_a_tab_ticks_never_pause(cpu_only: Services) -> None:
    refresh = HardwareHandlers(cpu_only, in_tab=False).tick(VIEWER, shown=False)
    assert refresh.page is not None and refresh.timer_active is None


def test_showing_the_tab_restarts_the_timer_with_a_fresh_page(cpu_only: Services) -> None:
    refresh = HardwareHandlers(cpu_only).show(VIEWER)
    assert refresh.timer_active is True and refresh.warning == ""
    page = refresh.page
    assert page is not None and page.has_gpu is False
    assert "No NVIDIA GPU" in page.cards_html and "no driver here" in page.cards_html
    assert "Ready for local inference?" in page.readiness_html
    assert "What this box can run" in page.capacity_html
    assert page.history is not None and list(page.history.ram.columns) == ["time", "GiB", "series"]


def test_an_on_screen_tick_leaves_the_timer_as_it_is(one_gpu: Services) -> None:
    refresh = HardwareHandlers(one_gpu).tick(VIEWER, shown=True)
    assert refresh.timer_active is None
    page = refresh.page
    assert page is not None and page.has_gpu is True
    assert "GPU 0 · NVIDIA &lt;b&gt;L4&lt;/b&gt;" in page.cards_html
    assert "<td>7</td>" in page.cards_html and "3.0 GiB" in page.cards_html
    assert '<span class="badge pass">PASS</span>' in page.readiness_html


def test_an_unreadable_machine_is_a_sentence_and_keeps_the_plots(cpu_only: Services) -> None:
    class Broken:
        interval_s = 2.0

        def snapshot(self) -> None:
            raise RuntimeError("psutil is confused")

        def close(self) -> None:
            pass

    cpu_only.hardware = Broken()  # type: ignore[assignment]
    page = HardwareHandlers(cpu_only).page()
    assert "Could not read the hardware: psutil is confused" in page.cards_html
    assert page.history is None  # the wiring leaves the plots as they were


def test_the_table_helper_escapes_text_and_keeps_markup() -> None:
    table = html_table(
        ["<Name>", Html("<i>Fits</i>")], [["<script>", Html("<b>yes</b>")]], css_class="hh-table"
    )
    assert table == (
        '<table class="hh-table"><thead><tr><th>&lt;Name&gt;</th><th><i>Fits</i></th></tr>'
        "</thead><tbody><tr><td>&lt;script&gt;</td><td><b>yes</b></td></tr></tbody></table>"
    )
    empty = html_table(["A"], [], css_class="t", empty="Nothing yet.", empty_class="hh-sub")
    assert empty == '<p class="hh-sub">Nothing yet.</p>'
