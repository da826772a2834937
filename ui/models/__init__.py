"""The Models tab: the catalog with fit badges, installed and loaded models, pull, load, unload,
delete, and the admission decision in numbers. Admin controls are hidden from staff (and the
server refuses staff anyway).

layout (components), handlers (plain values from services), wiring (events), render (HTML).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ui.models.handlers import ModelsHandlers
from ui.models.layout import layout
from ui.models.wiring import wire

if TYPE_CHECKING:
    import gradio as gr

    from backend.services import Services


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Models tab's components inside the current gr.Tab and wire their events."""
    handlers = ModelsHandlers(services)
    wire(handlers, layout(services.catalog.families(), handlers.hosts()), demo)
