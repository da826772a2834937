"""The usage table: one row per UTC day, user, model and source, added to as each turn ends.

Rows are written inside the reply's own write transaction (Store.add_message(usage=...)), so a
reply and its usage are stored together or not at all. Reads take a range of days (inclusive,
"YYYY-MM-DD"): the admin's views scan that range of the day-clustered table, a user's own view
and the daily quota read the (user_id, day) index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from backend.store.connections import ThreadConnections
from backend.store.values import check_choice, check_number

USAGE_SOURCES: tuple[str, ...] = ("page", "api")
_SUMS = (
    "sum(requests), sum(prompt_tokens), sum(reply_tokens), sum(engine_ms),"
    " sum(errors), sum(stopped)"
)


@dataclass(frozen=True)
class UsageEntry:
    """One finished turn's usage, as the chat service records it."""

    day: str  # UTC, YYYY-MM-DD (the chat service's clock decides the day)
    model: str
    source: str  # 'page' or 'api'
    prompt_tokens: int = 0
    reply_tokens: int = 0
    engine_ms: float = 0.0
    error: bool = False
    stopped: bool = False


@dataclass(frozen=True)
class UsageTotals:
    """Sums over some rows; `key` is what they are grouped by (a day, a user name, a model)."""

    key: str
    requests: int
    prompt_tokens: int
    reply_tokens: int
    engine_ms: float
    errors: int
    stopped: int


@dataclass(frozen=True)
class UsageRow:
    """One stored row with its user's name: what the CSV export writes."""

    day: str
    user: str
    model: str
    source: str
    requests: int
    prompt_tokens: int
    reply_tokens: int
    engine_ms: float
    errors: int
    stopped: int


def check_day(name: str, value: object) -> str:
    """A UTC day as the table keys it, from a date or "YYYY-MM-DD" text."""
    if isinstance(value, date):
        return value.isoformat()[:10]
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{name} must be a day as YYYY-MM-DD, got {value!r}.")


def add_usage(conn: sqlite3.Connection, user_id: int, entry: UsageEntry) -> None:
    """Add one turn to its day's row, inside the caller's write transaction."""
    check_choice("source", entry.source, USAGE_SOURCES)
    for name in ("prompt_tokens", "reply_tokens", "engine_ms"):
        check_number(name, getattr(entry, name))
    conn.execute(
        "INSERT INTO usage_daily (day, user_id, model, source, requests, prompt_tokens,"
        " reply_tokens, engine_ms, errors, stopped) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)"
        " ON CONFLICT (day, user_id, model, source) DO UPDATE SET"
        " requests = requests + 1,"
        " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
        " reply_tokens = reply_tokens + excluded.reply_tokens,"
        " engine_ms = engine_ms + excluded.engine_ms,"
        " errors = errors + excluded.errors, stopped = stopped + excluded.stopped",
        (check_day("day", entry.day), user_id, entry.model, entry.source,
         int(entry.prompt_tokens), int(entry.reply_tokens), float(entry.engine_ms),
         int(entry.error), int(entry.stopped)),
    )  # fmt: skip


class UsageTables:
    """Reading the usage table; Store inherits these methods."""

    _connections: ThreadConnections

    def record_usage(self, user_id: int, entry: UsageEntry) -> None:
        """Add a turn that leaves no reply row (an API call not kept as a conversation)."""
        with self._connections.write() as conn:
            add_usage(conn, user_id, entry)

    def _usage_rows(self, sql: str, params: tuple) -> list[tuple]:
        return self._connections.get().execute(sql, params).fetchall()

    def reply_tokens_on(self, user_id: int, day: str) -> int:
        """The user's reply tokens on one day, every model and source together."""
        rows = self._usage_rows(
            "SELECT coalesce(sum(reply_tokens), 0) FROM usage_daily WHERE user_id = ? AND day = ?",
            (user_id, check_day("day", day)),
        )
        return int(rows[0][0])

    def usage_by_day(self, since: str, until: str, user_id: int | None = None) -> list[UsageTotals]:
        """Totals per day in the range, oldest first; one user's, or everyone's."""
        sql = f"SELECT day, {_SUMS} FROM usage_daily WHERE day BETWEEN ? AND ?"
        params: tuple = (check_day("since", since), check_day("until", until))
        if user_id is not None:
            sql, params = _for_user(sql, params, user_id)
        return _totals(self._usage_rows(f"{sql} GROUP BY day ORDER BY day", params))

    def usage_by_model(
        self, since: str, until: str, user_id: int | None = None, *, limit: int = 10
    ) -> list[UsageTotals]:
        """Totals per model in the range, most requests first."""
        sql = f"SELECT model, {_SUMS} FROM usage_daily WHERE day BETWEEN ? AND ?"
        params: tuple = (check_day("since", since), check_day("until", until))
        if user_id is not None:
            sql, params = _for_user(sql, params, user_id)
        order = " GROUP BY model ORDER BY sum(requests) DESC, model LIMIT ?"
        return _totals(self._usage_rows(sql + order, (*params, limit)))

    def usage_by_user(self, since: str, until: str, *, limit: int = 10) -> list[UsageTotals]:
        """Totals per user in the range, most reply tokens first (the top users)."""
        rows = self._usage_rows(
            f"SELECT u.name, {_SUMS.replace('sum(', 'sum(t.')} FROM usage_daily t"
            " JOIN users u ON u.id = t.user_id WHERE t.day BETWEEN ? AND ?"
            # "+": group the day range read from the table itself, never walk the (user_id, day)
            # index across every user (with ANALYZE statistics SQLite would; 2.5x slower).
            " GROUP BY +t.user_id ORDER BY sum(t.reply_tokens) DESC, u.name LIMIT ?",
            (check_day("since", since), check_day("until", until), limit),
        )
        return _totals(rows)

    def iter_usage(self, since: str, until: str, user_id: int | None = None) -> Iterator[UsageRow]:
        """Every row in the range with its user's name, by day, user and model."""
        sql = (
            "SELECT t.day, u.name, t.model, t.source, t.requests, t.prompt_tokens,"
            " t.reply_tokens, t.engine_ms, t.errors, t.stopped FROM usage_daily t"
            " JOIN users u ON u.id = t.user_id WHERE t.day BETWEEN ? AND ?"
        )
        params: tuple = (check_day("since", since), check_day("until", until))
        if user_id is not None:
            sql, params = sql + " AND t.user_id = ?", (*params, user_id)
        cursor = self._connections.get().execute(
            sql + " ORDER BY t.day, u.name, t.model, t.source", params
        )
        for row in cursor:
            yield UsageRow(*row)


def _for_user(sql: str, params: tuple, user_id: int) -> tuple[str, tuple]:
    return sql + " AND user_id = ?", (*params, user_id)


def _totals(rows: list[tuple]) -> list[UsageTotals]:
    return [
        UsageTotals(str(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]
