"""What a page's clicks send about rows and edits, checked: any event can be called with anything.

A Dataset click sends the row number as the caller wrote it (a str, a float, a huge int, a
list...); a row is picked only when it is an int within the rows the page was shown.
"""

from __future__ import annotations

from typing import Any, TypeGuard

import gradio as gr

from backend.chat.turns import ChatInputError
from backend.chat.validation import quote_value


class EditEvent(gr.EventData):
    """gr.EditData that reads what a script may send instead (None, a list) as "no edit".

    Gradio builds the event data from the request before the handler runs (outside its
    guard); gr.EditData would fail there on anything but a dict.
    """

    def __init__(self, target: Any, data: Any) -> None:
        super().__init__(target, data)
        found = data if isinstance(data, dict) else {}
        self.index: object = found.get("index")
        self.value: object = found.get("value")


def is_index(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_id(value: object) -> TypeGuard[int]:
    return is_index(value) and value > 0


def picked(index: object, rows: object, pick: str) -> object:
    """The row a click picked: index must be an int within the rows the page was shown."""
    shown = rows if isinstance(rows, list) else []
    if not is_index(index):
        raise ChatInputError(f"{pick}; the row {quote_value(index)} is not a row number.")
    if not 0 <= index < len(shown):
        raise ChatInputError(f"{pick}; there is no row {quote_value(index)} in it.")
    return shown[index]
