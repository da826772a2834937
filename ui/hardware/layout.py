"""The Hardware tab's components: the cards, four history plots, the checklist, the capacity."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.common import current_tab

CARDS_ID = "hearth-hardware-cards"


@dataclass(frozen=True)
class HardwareLayout:
    tab: gr.Tab | None  # the enclosing tab, to refresh when it is shown (None outside a Tab)
    timer: gr.Timer
    shown: gr.Checkbox  # replaced by the browser's answer to "is the tab on screen?"
    cards: gr.HTML
    vram_plot: gr.LinePlot
    gpu_plot: gr.LinePlot
    ram_plot: gr.LinePlot
    cpu_plot: gr.LinePlot
    checklist: gr.HTML
    capacity: gr.HTML

    @property
    def page_outputs(self) -> list[gr.components.Component]:
        """In the order of wiring.page_outputs."""
        return [self.cards, self.checklist, self.capacity, self.vram_plot, self.gpu_plot,
                self.ram_plot, self.cpu_plot]  # fmt: skip


def _plot(y: str, title: str) -> gr.LinePlot:
    # Starts as None: a LinePlot that starts from an empty DataFrame draws no lines later on.
    # [None, None] is Gradio's "both limits from the data" (its default None, typed as a list).
    y_lim: list[float | None] = [0.0, 100.0] if y == "%" else [None, None]
    return gr.LinePlot(
        None, x="time", y=y, color="series", title=title, x_title="", y_lim=y_lim, height=220
    )


def layout(interval_s: float) -> HardwareLayout:
    """Create the components in the current render context (normally the Hardware gr.Tab)."""
    timer = gr.Timer(interval_s, active=True)
    shown = gr.Checkbox(value=True, visible=False)
    cards = gr.HTML('<p class="hh-sub">Reading the hardware…</p>', elem_id=CARDS_ID)
    with gr.Row():
        vram_plot = _plot("GiB", "GPU memory (GiB)")
        gpu_plot = _plot("%", "GPU busy (%)")
    with gr.Row():
        ram_plot = _plot("GiB", "System memory (GiB)")
        cpu_plot = _plot("%", "CPU busy (%)")
    return HardwareLayout(
        tab=current_tab(),
        timer=timer,
        shown=shown,
        cards=cards,
        vram_plot=vram_plot,
        gpu_plot=gpu_plot,
        ram_plot=ram_plot,
        cpu_plot=cpu_plot,
        checklist=gr.HTML(""),
        capacity=gr.HTML(""),
    )
