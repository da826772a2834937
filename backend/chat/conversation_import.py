"""Reading a conversation export before anything is written: its limits, its JSON, its checks.

Everything here runs outside any database transaction; the store only receives values that
it can write without a surprise (text that encodes, numbers that fit in SQLite).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.store.values import MESSAGE_ROLES, MESSAGE_STATUSES, utc_iso

EXPORT_FORMAT = "hearth.conversation"
EXPORT_VERSION = 1
# The one home of the upload limit: app.py hands it to Gradio's launch(max_file_size=...),
# which refuses a bigger upload with HTTP 413 while reading it, and import_json checks it again.
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_MESSAGES = 5_000
MAX_MESSAGE_CHARS = 100_000
MAX_NAME_CHARS = 200  # title and model name
_MAX_SQLITE_INT = 2**63 - 1
_STAT_FIELDS = ("ttft_ms", "tokens_in", "tokens_out", "tokens_per_s")
# Known generation options and the numbers each may hold; unknown keys are dropped, as
# backend.chat.turns.options_from_dict does for rows written by a newer version.
_OPTION_RANGES: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "num_ctx": (int, 1, 1 << 24),
    "num_predict": (int, 0, 1 << 24),
    "seed": (int, -_MAX_SQLITE_INT, _MAX_SQLITE_INT),
}


class InvalidExport(ValueError):
    """An import file that is not a Hearth conversation export; nothing was written."""


@dataclass(frozen=True)
class ParsedExport:
    title: str
    model: str
    system_prompt: str
    options: dict[str, Any]
    created_at: str | None
    messages: tuple[dict[str, Any], ...]


def parse_export(raw: object) -> ParsedExport:
    """Check an export file's size, JSON and every message; raise InvalidExport naming why."""
    document = _load(_as_bytes(raw))
    meta = document["conversation"]
    messages = document["messages"]
    if len(messages) > MAX_IMPORT_MESSAGES:
        raise InvalidExport(
            f"The export holds {len(messages):,} messages; an import may hold at most "
            f"{MAX_IMPORT_MESSAGES:,}."
        )
    created = meta.get("created_at")
    return ParsedExport(
        title=_text("The title", _as_str(meta.get("title")), MAX_NAME_CHARS, cut=True),
        model=_text("The model name", _as_str(meta.get("model")), MAX_NAME_CHARS),
        system_prompt=_text("The system prompt", _as_str(meta.get("system_prompt"))),
        options=_checked_options(meta.get("options")),
        created_at=_time("The conversation", created) if created else None,
        messages=tuple(_checked_message(i, m) for i, m in enumerate(messages, 1)),
    )


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidExport("The file is not valid UTF-8 text.") from exc
    if not isinstance(raw, bytes | bytearray):
        raise InvalidExport(f"An import takes the file's bytes, got {type(raw).__name__}.")
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidExport(
            f"The file is {len(raw):,} bytes; imports are limited to "
            f"{MAX_IMPORT_BYTES:,} bytes ({MAX_IMPORT_BYTES // 2**20} MiB)."
        )
    return bytes(raw)


def _load(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except RecursionError as exc:
        raise InvalidExport("The file's JSON is nested too deeply to be an export.") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise InvalidExport(f"The file is not valid JSON ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise InvalidExport("The file is not a Hearth conversation export (no 'format' marker).")
    if document.get("version") != EXPORT_VERSION:
        raise InvalidExport(f"Unsupported export version {_short(document.get('version'))}.")
    if not isinstance(document.get("conversation"), dict):
        raise InvalidExport("The export has no 'conversation' object.")
    if not isinstance(document.get("messages"), list):
        raise InvalidExport("The export has no 'messages' list.")
    return document


def _checked_message(index: int, message: Any) -> dict[str, Any]:
    where = f"Message {index:,}"
    if not isinstance(message, dict):
        raise InvalidExport(f"{where} is not an object.")
    role, content = message.get("role"), message.get("content")
    if role not in MESSAGE_ROLES:
        raise InvalidExport(f"{where} has role {_short(role)}; expected one of {MESSAGE_ROLES}.")
    if not isinstance(content, str):
        raise InvalidExport(f"{where} has no text content.")
    status = message.get("status", "complete")
    if status not in MESSAGE_STATUSES:
        raise InvalidExport(
            f"{where} has status {_short(status)}; expected one of {MESSAGE_STATUSES}."
        )
    checked: dict[str, Any] = {
        "role": role,
        "content": _text(where, content),
        "status": status,
        "model": _text(f"{where}'s model name", _as_str(message.get("model")), MAX_NAME_CHARS),
        "error": _text(f"{where}'s error", _as_str(message.get("error"))),
    }
    if message.get("created_at"):
        checked["created_at"] = _time(where, message["created_at"])
    for name in _STAT_FIELDS:
        if message.get(name) is not None:
            checked[name] = _stat(where, name, message[name])
    return checked


def _text(where: str, text: str, limit: int = MAX_MESSAGE_CHARS, *, cut: bool = False) -> str:
    if len(text) > limit:
        if not cut:
            raise InvalidExport(
                f"{where} is {len(text):,} characters long; the limit is {limit:,}."
            )
        text = text[:limit]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidExport(
            f"{where} holds text that is not valid Unicode ({exc.reason})."
        ) from exc
    return text


def _as_str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else _short(value)


def _time(where: str, value: object) -> str:
    try:
        return utc_iso(value)
    except (ValueError, OverflowError) as exc:
        raise InvalidExport(f"{where} has time {_short(value)}, not an ISO 8601 time.") from exc


def _stat(where: str, name: str, value: object) -> float | int:
    kind = int if name.startswith("tokens_") and name != "tokens_per_s" else float
    if _number_in(value, kind, 0, _MAX_SQLITE_INT):
        return value  # type: ignore[return-value]
    expected = "a whole number" if kind is int else "a finite number"
    raise InvalidExport(f"{where} has {name} {_short(value)}; expected {expected} of at least 0.")


def _checked_options(options: object) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        return {}
    checked = {}
    for name, (kind, low, high) in _OPTION_RANGES.items():
        value = options.get(name)
        if value is None:
            continue
        if not _number_in(value, kind, low, high):
            raise InvalidExport(
                f"The option {name} is {_short(value)}; expected a number from {low} to {high}."
            )
        checked[name] = value
    return checked


def _number_in(value: object, kind: type, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind is int and not isinstance(value, int):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return low <= value <= high


def _short(value: object, limit: int = 60) -> str:
    """A value for an error message, cut so a hostile file cannot fill the screen."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
