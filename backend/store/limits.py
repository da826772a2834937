"""The limits table: what an admin set for a role or one user (turns, requests, reply tokens).

A column left NULL is "not set": for a user it falls back to their role's value, for a role it
means no limit. A row with every column unset is deleted rather than kept.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from backend.store.connections import ThreadConnections
from backend.store.records import UserNotFound
from backend.store.values import ROLES, check_choice, now_iso

LIMIT_COLUMNS: tuple[str, ...] = ("turns_in_flight", "requests_per_minute", "reply_tokens_per_day")
_SELECT = (
    "SELECT l.role, l.user_id, u.name, l.turns_in_flight, l.requests_per_minute,"
    " l.reply_tokens_per_day, l.updated_at, l.updated_by"
    " FROM limits l LEFT JOIN users u ON u.id = l.user_id"
)


@dataclass(frozen=True)
class LimitRecord:
    """One stored row: for a role (role set) or for one user (user_id and user set)."""

    role: str | None
    user_id: int | None
    user: str | None
    turns_in_flight: int | None
    requests_per_minute: int | None
    reply_tokens_per_day: int | None
    updated_at: str
    updated_by: str


class LimitTables:
    """Reading and writing the limits table; Store inherits these methods."""

    _connections: ThreadConnections

    def list_limits(self) -> list[LimitRecord]:
        """Every row: roles first (by name), then users (by name)."""
        rows = self._connections.get().execute(
            f"{_SELECT} ORDER BY l.role IS NULL, l.role, u.name COLLATE NOCASE"
        )
        return [LimitRecord(*row) for row in rows]

    def limits_for(self, role: str, user_id: int) -> tuple[LimitRecord | None, LimitRecord | None]:
        """The role's row and the user's row (either may be missing)."""
        rows = self._connections.get().execute(
            f"{_SELECT} WHERE l.role = ? OR l.user_id = ?", (role, user_id)
        )
        found = [LimitRecord(*row) for row in rows]
        by_role = next((r for r in found if r.role is not None), None)
        by_user = next((r for r in found if r.user_id is not None), None)
        return by_role, by_user

    def set_limits(
        self,
        *,
        role: str | None = None,
        user_id: int | None = None,
        values: dict[str, int | None],
        updated_by: str,
    ) -> None:
        """Replace the row of a role or a user with these values (all None: delete it)."""
        if (role is None) == (user_id is None):
            raise ValueError("Limits are set for a role or for a user, not both or neither.")
        if role is not None:
            check_choice("role", role, ROLES)
        unknown = set(values) - set(LIMIT_COLUMNS)
        if unknown:
            raise ValueError(f"Unknown limit(s): {', '.join(sorted(unknown))}.")
        numbers = [values.get(column) for column in LIMIT_COLUMNS]
        for column, number in zip(LIMIT_COLUMNS, numbers, strict=True):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int)
                                       or number < 0):  # fmt: skip
                raise ValueError(f"{column} must be a whole number of at least 0, got {number!r}.")
        where, key = ("role = ?", role) if role is not None else ("user_id = ?", user_id)
        with self._connections.write() as conn:
            conn.execute(f"DELETE FROM limits WHERE {where}", (key,))
            if all(number is None for number in numbers):
                return
            try:
                conn.execute(
                    "INSERT INTO limits (role, user_id, turns_in_flight, requests_per_minute,"
                    " reply_tokens_per_day, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (role, user_id, *numbers, now_iso(), updated_by),
                )
            except sqlite3.IntegrityError as exc:
                raise UserNotFound(user_id or 0) from exc
