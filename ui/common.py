"""Helpers shared by the tabs: the acting user, safe text, readable numbers."""

from __future__ import annotations

import functools
import html
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import gradio as gr

from backend.auth import PermissionDenied, User
from backend.chat.fair_line_values import StopFlag
from backend.services import EngineError, StoreError
from ui.chat_markdown import chat_markdown
from ui.errors import OUR_PACKAGES, raised_by_our_code, server_error, shorten

if TYPE_CHECKING:
    from backend.services import Services

# Errors whose message is written for the person at the screen (when our code raised them:
# see written_for_users); anything else is a bug, logged with a reference (ui.errors).
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, PermissionError, EngineError, StoreError)
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def last_input_from_page(expression: str) -> str:
    """An event's `js` that replaces its last input with a JavaScript expression's value: for
    what only the browser knows (its time zone, its own address). The handler gets it as it
    gets any value sent, so from anyone: it must check it."""
    return f"(...values) => [...values.slice(0, -1), {expression}]"


def unlocked(**props: Any) -> dict[str, Any]:
    """A page-load update that fills a form's component (props) and unlocks it. A form whose
    values come from the page-load update is built locked (interactive=False) and unlocked only
    by it: that update can then never land over what someone typed or saved before it came.
    A new dict each time: Gradio takes an update's value out of it as it applies it."""
    return gr.update(interactive=True, **props)


GUARDED = "__hearth_guarded__"  # set on every wrapped handler; tests walk the UI for it


class Caller(Protocol):
    """What a handler needs of gr.Request; handler tests pass a small stand-in."""

    username: str | None


def current_tab() -> gr.Tab | None:
    """The gr.Tab whose components are being built now, or None outside one (a tab's events,
    such as opening it, are wired on it)."""
    context = gr.context.get_render_context()
    return context if isinstance(context, gr.Tab) else None


def acting_user(services: Services, request: Caller | None) -> User:
    """The signed-in user for this request; raises PermissionDenied for anonymous callers."""
    user = services.auth.resolve(getattr(request, "username", None) if request else None)
    if user is None:
        raise PermissionDenied("Sign in first.")
    return user


def safe_markdown(text: str) -> str:
    """Chat text (questions, replies, notices that echo input) as markdown with no HTML or images.

    One renderer for all of it, ui.chat_markdown: `<` shows as a character, `![alt](url)`
    becomes the link `[image: alt](url)`, and code cannot smuggle markup out of a fence.
    """
    return chat_markdown(text)


def inline_markdown(text: str) -> str:
    """Untrusted text (a model name, an engine's error) on one line of a markdown notice."""
    return safe_markdown(" ".join(str(text).split()))


def format_expiry(iso: str) -> str:
    """When a loaded model will be unloaded, from Ollama's expires_at ("" = never); plain text."""
    if not iso:
        return "never"
    try:
        left = (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()
    except ValueError:
        return iso
    return f"in {left / 60:.0f} min" if left >= 60 else f"in {max(left, 0):.0f} s"


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an event handler: any error becomes a readable toast (gr.Error), never a traceback.

    A user-facing error shows its own sentence; anything else is logged with its traceback and
    a short reference, and the toast names only the reference. Keeps the signature, so Gradio
    still injects gr.Request, and works for generators. Every handler must be wrapped: a unit
    test walks the built UI for the GUARDED mark.
    """
    if getattr(fn, GUARDED, False):
        return fn
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"guarded wraps plain functions and generators, not {fn!r}")
    where = getattr(fn, "__qualname__", repr(fn))
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise readable_error(exc, where) from exc

        wrapper = stream
    else:

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise readable_error(exc, where) from exc

        wrapper = run
    setattr(wrapper, GUARDED, True)
    return wrapper


def written_for_users(exc: BaseException) -> bool:
    """A user-facing error type whose message our code wrote (not Python's own words)."""
    if not isinstance(exc, USER_ERRORS):
        return False
    return type(exc).__module__.split(".")[0] in OUR_PACKAGES or raised_by_our_code(exc)


def readable_error(exc: Exception, where: str) -> gr.Error:
    """The toast for exc: its own sentence when written for users, else a logged reference."""
    return user_error(exc) if written_for_users(exc) else server_error(exc, where)


def user_error(exc: Exception) -> gr.Error:
    """A toast for a user-facing error; toasts render HTML, and messages can echo input."""
    if not written_for_users(exc):
        return server_error(exc, "a handler")
    return gr.Error(html.escape(shorten(str(exc))), print_exception=False)


class CancelRegistry:
    """The Stop flag of each page session's work in flight (a chat turn, a model pull)."""

    def __init__(self) -> None:
        self._flags: dict[str | None, threading.Event] = {}
        self._lock = threading.Lock()

    @contextmanager
    def running(self, session: str | None) -> Iterator[threading.Event]:
        """A fresh flag for this session's new work; forgotten when that work ends. It is a
        StopFlag: a turn waiting in the fair line leaves as soon as it is set."""
        flag = StopFlag()
        with self._lock:
            self._flags[session] = flag  # Stop reaches the session's newest work
        try:
            yield flag
        finally:
            with self._lock:
                if self._flags.get(session) is flag:
                    del self._flags[session]

    def cancel(self, session: str | None) -> bool:
        """Set the flag of this session's work in flight; False when it has none."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True
