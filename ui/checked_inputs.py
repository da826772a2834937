"""Form components whose value reaches the handler exactly as sent, for chat_validation to check.

Gradio's own preprocessing of a Slider or a Number fails on what a caller by fn_index may send
("abc", Infinity, NaN) with a bare "Error", and a Dropdown answers "Value: ... is not in the
list of choices" in its own words. The Chat tab's settings go to the chat service's validation
instead, which names the field and the value in one sentence, the same as for /chat. Each class
is a template of its Gradio component, so the page draws it exactly like the original.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


class CheckedSlider(gr.Slider):
    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


class CheckedNumber(gr.Number):
    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


class CheckedDropdown(gr.Dropdown):
    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload
