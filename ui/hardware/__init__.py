"""The Hardware tab: what the box has, what it is doing, whether it is fit for local inference.

layout (components), handlers (plain values from services), wiring (events), render (HTML).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ui.hardware.handlers import HardwareHandlers
from ui.hardware.layout import layout
from ui.hardware.wiring import page_outputs, wire

if TYPE_CHECKING:
    from backend.services import Services


def build(services: Services) -> None:
    """Create the Hardware tab's components and wire their refresh; call inside its gr.Tab."""
    view = layout(services.hardware.interval_s)
    wire(HardwareHandlers(services, in_tab=view.tab is not None), view)


def page_values(services: Services) -> tuple[Any, ...]:
    """The page as the tab's outputs take it (cards, readiness, capacity, four plots)."""
    return page_outputs(HardwareHandlers(services).page())
