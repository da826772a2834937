"""How a failure reaches the page: a sentence in a toast; the traceback goes to the log only.

Two places can fail on a request: our handler (ui.common.guarded turns that into a toast) and
Gradio's own reading of the values sent (preprocess) or writing of what we return
(postprocess), which runs outside any handler. HearthBlocks covers the latter, and refuses
values no component can hold (lone surrogates, absurd nesting) before Gradio looks at them:
SQLite, orjson and the engines cannot take them, and orjson failing on an echoed value would
break the event stream itself.

HearthBlocks also passes gr.skip() outputs through as they are. Gradio (6.x) treats a skip as
a property update: it builds the component anew and rebuilds its config, JSON schema included,
on the event loop, for every skip in every streamed update. Under load that was most of what
kept the event loop from taking new requests.
"""

from __future__ import annotations

import dis
import html
import logging
import re
import secrets
from typing import Any

import gradio as gr
from gradio.components import _Keywords
from gradio.utils import deep_hash
from starlette.requests import Request
from starlette.responses import JSONResponse

from ui.gradio_sessions import LazySessionState

log = logging.getLogger("hearth.ui")

OUR_PACKAGES = frozenset({"backend", "ui"})
MAX_INPUT_DEPTH = 32  # a chat history (list > message > content parts > part) needs about 5
_LONG_WORD = re.compile(r"\S{81,}")


class InputRefused(gr.Error):
    """A value sent with a request that no field of this app can hold."""

    def __init__(self, message: str) -> None:
        super().__init__(message, print_exception=False)


def logged(exc: BaseException, where: str) -> str:
    """Log exc with its traceback under a short reference; the sentence that names only that."""
    ref = secrets.token_hex(3)
    log.error("Unexpected error in %s (ref %s)", where, ref, exc_info=exc)
    return f"Something went wrong on the server (ref {ref}); it has been logged."


def server_error(exc: BaseException, where: str) -> gr.Error:
    """The toast for an unexpected exception in an event: the logged reference, no internals."""
    return gr.Error(logged(exc, where), print_exception=False)


async def http_server_error(request: Request, exc: Exception) -> JSONResponse:
    """A request that failed outside any event (e.g. queue/join with an unknown fn_index).

    Starlette's plain "Internal Server Error" says nothing; this says the same as a toast, as
    JSON like FastAPI's own refusals ({"detail": ...}). Installed via launch(app_kwargs=...).
    """
    detail = logged(exc, f"{request.method} {request.url.path}")
    return JSONResponse({"detail": detail}, status_code=500)


def shorten(message: str) -> str:
    """A message that echoes a huge value (a 1,000,000-character name) cut to a readable size."""
    return _LONG_WORD.sub(lambda m: f"{m.group()[:60]}…({len(m.group()):,} characters)", message)


def raised_by_our_code(exc: BaseException) -> bool:
    """Whether a `raise` statement in backend/ or ui/ raised exc (its message is ours).

    int("abc"), a codec or a library raise from inside Python or C: the innermost frame of the
    traceback is then not a `raise` in our code, and the message is Python's, not a sentence.
    """
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    if module.split(".")[0] not in OUR_PACKAGES:
        return False
    return any(
        instruction.offset == tb.tb_lasti and instruction.opname == "RAISE_VARARGS"
        for instruction in dis.get_instructions(tb.tb_frame.f_code)
    )


def check_input(value: Any, depth: int = 0) -> None:
    """Refuse text that is not valid Unicode and structures nested deeper than any field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputRefused(
                f"The text sent contains a character that is not valid Unicode "
                f"(U+{ord(value[exc.start]):04X}, a lone surrogate, at position {exc.start}); "
                "remove it and try again."
            ) from None
        return
    if not isinstance(value, list | tuple | dict):
        return
    if depth >= MAX_INPUT_DEPTH:
        raise InputRefused(
            f"A value sent is nested more than {MAX_INPUT_DEPTH} levels deep; "
            "no field of this app takes that."
        )
    items = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
    for item in items:
        check_input(item, depth + 1)


class HearthBlocks(gr.Blocks):
    """gr.Blocks whose own reading and writing of values fail with a sentence, not "Error"."""

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any):
        check_input(inputs)
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error as exc:  # Gradio's own ("Value: ... is not in the list of choices")
            message = html.escape(shorten(exc.message))  # it echoes the value; toasts are HTML
            raise gr.Error(message, print_exception=False) from exc
        except Exception as exc:
            ref = secrets.token_hex(3)
            log.warning("Values refused before %s (ref %s)", _name(block_fn), ref, exc_info=exc)
            raise InputRefused(
                "A value sent with this request could not be read (a stale or altered page?); "
                f"reload the page and try again (ref {ref})."
            ) from exc

    async def postprocess_data(self, block_fn: Any, predictions: Any, state: Any) -> list[Any]:
        if isinstance(predictions, dict) and predictions == SKIP:  # one for every output
            predictions = [SKIP] * len(getattr(block_fn, "outputs", None) or ())
        skipped = bare_skips(block_fn, predictions)
        if not skipped:
            return await super().postprocess_data(block_fn, predictions, state)
        kept = [
            _Keywords.FINISHED_ITERATING if i in skipped else p for i, p in enumerate(predictions)
        ]
        output = await super().postprocess_data(block_fn, kept, state)
        for index in skipped:
            output[index] = dict(SKIP)  # what Gradio itself sends for a skip, without the rebuild
        return output

    def get_state_ids_to_track(self, block_fn: Any, state: Any) -> tuple[list[int], list]:
        """The States among an event's outputs that a "change" listener watches, with their
        values' hashes. Gradio looks through every event of the UI for each output of every
        update (a streamed reply's too); a Hearth session knows the watched ones already."""
        if not isinstance(state, LazySessionState):
            return super().get_state_ids_to_track(block_fn, state)
        ids = [b._id for b in block_fn.outputs if b.stateful and b._id in state.change_watched]
        return ids, [deep_hash(state[block_id]) for block_id in ids]

    async def process_api(self, block_fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # What fails outside our handlers and outside reading the values: Gradio building an
        # event's data (an .edit event called without its EditData), writing our outputs.
        try:
            return await super().process_api(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise server_error(exc, _name(block_fn)) from exc


SKIP = {"__type__": "update"}  # gr.skip(): an update that changes nothing


def bare_skips(block_fn: Any, predictions: Any) -> frozenset[int]:
    """Indices of the outputs (not gr.State: Gradio keeps those cheaply) that are a bare
    gr.skip(), for an event of two or more outputs; empty when there are none."""
    outputs = list(getattr(block_fn, "outputs", None) or ())
    if len(outputs) < 2 or getattr(block_fn, "batch", False):
        return frozenset()
    if not isinstance(predictions, (list, tuple)) or len(predictions) != len(outputs):
        return frozenset()  # Gradio's own validation says what is wrong
    return frozenset(
        i for i, (p, block) in enumerate(zip(predictions, outputs, strict=True))
        if isinstance(p, dict) and p == SKIP and not block.stateful
    )  # fmt: skip


def _name(block_fn: Any) -> str:
    if isinstance(block_fn, int):
        return f"event {block_fn}"
    return str(getattr(block_fn, "api_name", None) or getattr(block_fn, "name", "an event"))
