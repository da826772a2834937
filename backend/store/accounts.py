"""The accounts, audit and settings tables: the part of the store that no owner scopes."""

from __future__ import annotations

import json
import sqlite3

from backend.store.connections import ThreadConnections
from backend.store.records import (
    USER_COLUMNS,
    AuditEntry,
    UserExists,
    UserNotFound,
    UserRecord,
    user_record,
)
from backend.store.values import ROLES, check_choice, check_limit, now_iso, utc_iso

_UNCHANGED: object = object()  # update_user(locked_until=...) default: leave it as it is


class AccountTables:
    """Users, audit log and settings; Store inherits these methods."""

    _connections: ThreadConnections

    def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self._connections.get().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._connections.get().execute(sql, params).fetchall()

    # -- users ------------------------------------------------------------------------------

    def create_user(self, name: str, role: str, password_hash: str) -> UserRecord:
        name = name.strip()
        if not name:
            raise ValueError("A user name must not be empty.")
        check_choice("role", role, ROLES)
        try:
            with self._connections.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    (name, role, password_hash, now_iso()),
                )
        except sqlite3.IntegrityError as exc:
            raise UserExists(name) from exc
        user = self.get_user(cursor.lastrowid)
        assert user is not None
        return user

    def get_user(self, user_id: int) -> UserRecord | None:
        row = self._one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return user_record(row) if row else None

    def get_user_by_name(self, name: str) -> UserRecord | None:
        """The user with this name, compared without regard to case."""
        row = self._one(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name.strip(),))
        return user_record(row) if row else None

    def list_users(self) -> list[UserRecord]:
        return [user_record(r) for r in self._all(f"SELECT {USER_COLUMNS} FROM users ORDER BY id")]

    def count_users(self) -> int:
        return self._one("SELECT count(*) FROM users")[0]

    def update_user(
        self,
        user_id: int,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
        failed_logins: int | None = None,
        locked_until: str | object | None = _UNCHANGED,
    ) -> UserRecord:
        changes: dict[str, object] = {}
        if role is not None:
            changes["role"] = check_choice("role", role, ROLES)
        if disabled is not None:
            changes["disabled"] = int(bool(disabled))
        if password_hash is not None:
            changes["password_hash"] = password_hash
        if failed_logins is not None:
            if failed_logins < 0:
                raise ValueError(f"failed_logins must not be negative, got {failed_logins}.")
            changes["failed_logins"] = failed_logins
        if locked_until is not _UNCHANGED:
            changes["locked_until"] = None if locked_until is None else utc_iso(locked_until)
        with self._connections.write() as conn:
            sets = ", ".join(f"{column} = ?" for column in changes) or "id = id"
            cursor = conn.execute(
                f"UPDATE users SET {sets} WHERE id = ?", (*changes.values(), user_id)
            )
            if cursor.rowcount == 0:
                raise UserNotFound(user_id)
        user = self.get_user(user_id)
        assert user is not None
        return user

    # -- audit log --------------------------------------------------------------------------

    def audit(
        self, *, actor: str, action: str, target: str = "", outcome: str = "ok", detail: str = ""
    ) -> None:
        with self._connections.write() as conn:
            conn.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now_iso(), actor, action, target, outcome, detail),
            )

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Audit entries matching every given filter, newest first."""
        check_limit(limit, offset)
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (("actor", actor), ("action", action), ("outcome", outcome)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(utc_iso(since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._all(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit"
            f" {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [AuditEntry(*row) for row in rows]

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str, default: object = None) -> object:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: object) -> None:
        try:
            encoded = json.dumps(value)
        except TypeError as exc:
            raise ValueError(f"Setting {key!r} must be JSON-serialisable: {exc}") from exc
        with self._connections.write() as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, encoded),
            )
