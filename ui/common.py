"""Helpers shared by the tabs: the acting user, safe text, readable numbers."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import gradio as gr

from backend.accounts import PermissionDenied, User

if TYPE_CHECKING:
    from backend.services import Services

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


def format_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"
