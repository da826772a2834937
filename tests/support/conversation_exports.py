"""Conversation export files for import tests and benches, built the way export_json writes them."""

from __future__ import annotations

import json
from typing import Any


def export(messages: list[Any], **conversation: Any) -> bytes:
    """An export file holding these messages; keyword arguments go into its conversation."""
    document = {
        "format": "hearth.conversation",
        "version": 1,
        "conversation": {"title": "Imported", **conversation},
        "messages": messages,
    }
    return json.dumps(document).encode()


def turns(count: int) -> list[dict[str, str]]:
    """Alternating user/assistant messages whose contents are m0, m1, m2, ..."""
    return [{"role": ("user", "assistant")[i % 2], "content": f"m{i}"} for i in range(count)]
