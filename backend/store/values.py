"""Pure helpers of the store: timestamps, input checks, JSON options, full-text queries."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime

ROLES: tuple[str, ...] = ("admin", "staff")
MESSAGE_ROLES: tuple[str, ...] = ("system", "user", "assistant")
MESSAGE_STATUSES: tuple[str, ...] = ("complete", "stopped", "error", "interrupted")
DEFAULT_TITLE = "New chat"
MAX_QUERY_WORDS = 16

_WORD = re.compile(r"\w+")


def now_iso() -> str:
    """The current time as a fixed-width UTC ISO 8601 string (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def utc_iso(value: object) -> str:
    """An ISO 8601 time in the store's format; a time without an offset is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO 8601 date and time.") from exc
    else:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT on this cursor just made (sqlite3 types it as maybe None)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise RuntimeError("The INSERT made no row.")
    return rowid


def check_limit(limit: int, offset: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}.")


def check_number(name: str, value: object) -> None:
    """Stats are optional, but when present they are finite, non-negative numbers."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of at least 0, got {value!r}.")


def dump_options(options: object) -> str:
    if not isinstance(options, Mapping):
        raise ValueError(f"options must be a dictionary, got {options!r}.")
    try:
        return json.dumps(dict(options), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"options must be JSON-serialisable: {exc}.") from exc


def load_options(options_json: str) -> dict:
    return json.loads(options_json)


def fts_query(owner_id: int, text: str) -> str | None:
    """An FTS5 MATCH expression for plain words, scoped to the owner; None if no words.

    Each word becomes a quoted string (so `"`, `AND(`, `*`, `-` or `NEAR` mean nothing), all
    must match, and the last one also matches as a prefix.
    """
    words = _WORD.findall(text)[:MAX_QUERY_WORDS]
    if not words:
        return None
    terms = [f'"{word}"' for word in words]
    terms[-1] += "*"
    return f'owner_id : "{int(owner_id)}" AND content : ({" AND ".join(terms)})'


def message_row(owner_id: int, index: int, message: object, default_created_at: str) -> tuple:
    """One imported message as the tuple the messages INSERT takes after conversation_id."""
    where = f"Message {index + 1}"
    if not isinstance(message, Mapping):
        raise ValueError(f"{where} must be a dictionary, got {message!r}.")
    role = message.get("role")
    if role not in MESSAGE_ROLES:
        raise ValueError(f"{where}: role must be one of {', '.join(MESSAGE_ROLES)}, got {role!r}.")
    content = message.get("content")
    if not isinstance(content, str):
        raise ValueError(f"{where}: content must be text, got {content!r}.")
    status = message.get("status") or "complete"
    if status not in MESSAGE_STATUSES:
        raise ValueError(
            f"{where}: status must be one of {', '.join(MESSAGE_STATUSES)}, got {status!r}."
        )
    created = message.get("created_at")
    try:
        created_at = utc_iso(created) if created else default_created_at
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    stats = []
    for name in ("ttft_ms", "tokens_in", "tokens_out", "tokens_per_s"):
        value = message.get(name)
        try:
            check_number(name, value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        stats.append(value)
    return (
        owner_id,
        role,
        content,
        str(message.get("model") or ""),
        created_at,
        status,
        str(message.get("error") or ""),
        *stats,
    )
