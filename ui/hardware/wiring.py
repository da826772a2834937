"""The Hardware tab's events: a timer that refreshes while the tab is on screen, and the tab's
select, which refreshes at once and restarts the timer. Both private, both for any signed-in
user, four at a time at most."""

from __future__ import annotations

from html import escape
from typing import Any

import gradio as gr

from ui.common import guarded
from ui.hardware.handlers import HardwareHandlers, HardwarePage, Refresh
from ui.hardware.layout import CARDS_ID, HardwareLayout

# Runs in the browser before each tick: is the Hardware tab on screen? (Gradio does not render
# the contents of hidden tabs.) Its result replaces the tick's input.
SHOWN_JS = (
    f"() => {{ const el = document.getElementById('{CARDS_ID}');"
    " return [!!el && el.offsetParent !== null]; }"
)
_PAGE_OUTPUTS = 7


def page_outputs(page: HardwarePage) -> tuple[Any, ...]:
    """(cards, readiness, capacity, vram plot, GPU plot, RAM frame, CPU frame) as Gradio takes
    them; GPU plots are hidden without a GPU, and kept as they are when nothing could be read."""
    if page.history is None:
        return (page.cards_html, "", "", *[gr.skip()] * 4)
    history = page.history
    return (
        page.cards_html,
        page.readiness_html,
        page.capacity_html,
        gr.LinePlot(value=history.vram, visible=page.has_gpu),
        gr.LinePlot(value=history.gpu, visible=page.has_gpu),
        history.ram,
        history.cpu,
    )


def refresh_outputs(refresh: Refresh) -> tuple[Any, ...]:
    """The timer's new state and the page, or skips where nothing new is shown."""
    if refresh.warning:
        gr.Warning(escape(refresh.warning))  # toasts render HTML
    active = refresh.timer_active
    timer = gr.skip() if active is None else gr.Timer(active=active)
    if refresh.page is None:
        return (timer, *[gr.skip()] * _PAGE_OUTPUTS)
    return (timer, *page_outputs(refresh.page))


def wire(handlers: HardwareHandlers, view: HardwareLayout) -> None:
    # The function names are the events' api_names (on_tick, on_show).
    @guarded
    def on_tick(is_shown: bool, request: gr.Request) -> tuple[Any, ...]:
        return refresh_outputs(handlers.tick(request, bool(is_shown)))

    @guarded
    def on_show(request: gr.Request) -> tuple[Any, ...]:
        return refresh_outputs(handlers.show(request))

    common: dict[str, Any] = {
        "outputs": [view.timer, *view.page_outputs],
        "api_visibility": "private",
        "show_progress": "hidden",
        "concurrency_id": "hearth-hardware",
        "concurrency_limit": 4,
    }
    in_tab = view.tab is not None
    view.timer.tick(on_tick, inputs=[view.shown], js=SHOWN_JS if in_tab else None, **common)
    if view.tab is not None:
        view.tab.select(on_show, **common)
