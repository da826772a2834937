"""The Chat tab: conversation sidebar, streaming chat, generation settings.

layout.py creates the components, handlers.py does the work (testable without a browser),
wiring.py connects them; turns.py streams a turn and serves /chat; render.py draws values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ui.chat.handlers import ChatHandlers
from ui.chat.layout import ChatLayout, layout
from ui.chat.turns import register_api
from ui.chat.wiring import wire
from ui.common import CancelRegistry

if TYPE_CHECKING:
    import gradio as gr

    from backend.services import Services

__all__ = ["ChatHandlers", "ChatLayout", "build"]


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Chat tab's components inside the current gr.Tab and wire their events."""
    handlers = ChatHandlers(services, CancelRegistry())
    wire(layout(), handlers, demo, services.chat_concurrency)
    register_api(services)
