"""The Admin tab: users and roles, the audit log with filters, pages and CSV export, the
admission policy, limits and the engines. layout (components), handlers (plain values),
wiring (events), render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ui.admin import admission_panel, engines_panel, limits_panel
from ui.admin.handlers import AdminHandlers
from ui.admin.layout import layout
from ui.admin.wiring import wire

if TYPE_CHECKING:
    import gradio as gr

    from backend.services import Services


def build(services: Services, demo: gr.Blocks, tab: gr.Tab | None = None) -> None:
    """Create the Admin tab's components inside the current gr.Tab and wire their events.

    `tab`, when given, is shown on page load for admins only (create it with visible=False).
    """
    view = layout(  # the panels' handlers check roles themselves
        lambda: admission_panel.build(services, demo),
        lambda: limits_panel.build(services, demo),
        lambda: engines_panel.build(services, demo),
    )
    wire(AdminHandlers(services), view, demo, tab)
