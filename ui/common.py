"""Helpers shared by the tabs: the acting user, safe text, readable numbers."""

from __future__ import annotations

import functools
import html
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.auth.accounts import PermissionDenied, User
from backend.services import EngineError, StoreError

if TYPE_CHECKING:
    from backend.services import Services

# Errors whose message is written for the person at the screen; anything else is a bug and
# Gradio shows a generic "Error" (show_error=False keeps tracebacks out of the page).
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, PermissionError, EngineError, StoreError)
PRIVATE: dict[str, Any] = {"api_visibility": "private"}

_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.DOTALL)


def acting_user(services: Services, request: gr.Request | None) -> User:
    """The signed-in user for this request; raises PermissionDenied for anonymous callers."""
    user = services.accounts.resolve(getattr(request, "username", None) if request else None)
    if user is None:
        raise PermissionDenied("Sign in first.")
    return user


def safe_markdown(text: str) -> str:
    """Markdown whose HTML shows as text: escape <, >, & outside code spans and fences.

    Code is left alone because markdown already shows it literally; everywhere else an
    `<img onerror=...>` in a reply or a question must appear as characters, never as markup.
    """
    parts = _CODE.split(text)
    return "".join(
        part if index % 2 else html.escape(part, quote=False) for index, part in enumerate(parts)
    )


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
    """Wrap an event handler: a user-facing error becomes a toast (gr.Error), not a traceback.

    Keeps the signature, so Gradio still injects gr.Request, and works for generators.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except USER_ERRORS as exc:
                raise user_error(exc) from exc

        return stream

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            raise user_error(exc) from exc

    return run


def user_error(exc: Exception) -> gr.Error:
    """A toast for a user-facing error; toasts render HTML, and messages can echo input."""
    return gr.Error(html.escape(str(exc)), print_exception=False)


class CancelRegistry:
    """The Stop flag of each page session's work in flight (a chat turn, a model pull)."""

    def __init__(self) -> None:
        self._flags: dict[str | None, threading.Event] = {}
        self._lock = threading.Lock()

    @contextmanager
    def running(self, session: str | None) -> Iterator[threading.Event]:
        """A fresh flag for this session's new work; forgotten when that work ends."""
        flag = threading.Event()
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
