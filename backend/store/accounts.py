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
from backend.store.values import ROLES, check_choice, check_limit, inserted_id, now_iso, utc_iso

_UNCHANGED: object = object()  # update_user(locked_until=...) default: leave it as it is
# Every outcome an audit row may have: the Admin filter offers exactly these. A refusal (not
# allowed, locked out, foreign origin) is 'refused'; 'cancelled' is work its caller stopped.
AUDIT_OUTCOMES: tuple[str, ...] = ("ok", "failed", "refused", "cancelled")


class AccountTables:
    """Users, audit log and settings; Store inherits these methods."""

    _connections: ThreadConnections

    def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self._connections.get().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._connections.get().execute(sql, params).fetchall()

    def _count(self, sql: str, params: tuple = ()) -> int:
        """The single number a `SELECT count(*)` returns."""
        row = self._one(sql, params)
        assert row is not None, "SELECT count(*) always returns one row"
        return int(row[0])

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
        user = self.get_user(inserted_id(cursor))
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
        return self._count("SELECT count(*) FROM users")

    def update_user(
        self,
        user_id: int,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
        failed_logins: int | None = None,
        locked_until: str | object | None = _UNCHANGED,
        end_sessions: bool = False,
    ) -> UserRecord:
        """Change the given columns; end_sessions also ends the user's sessions, atomically."""
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
            if end_sessions:
                _stamp_sessions_ended(conn, user_id)
        user = self.get_user(user_id)
        assert user is not None
        return user

    # -- sessions ---------------------------------------------------------------------------

    def session_clock(self) -> int:
        """The session clock now: a login stamped with it outlives every earlier ending."""
        row = self._one("SELECT epoch FROM session_clock WHERE id = 1")
        return row[0] if row else 0

    def session_epoch(self, user_id: int) -> int | None:
        """The clock value at which this user's sessions last ended (0: never); None: no user."""
        row = self._one("SELECT session_epoch FROM users WHERE id = ?", (user_id,))
        return None if row is None else row[0]

    def end_sessions(self, user_id: int) -> int:
        """End every session of this user begun before now; returns the new clock value."""
        with self._connections.write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
                raise UserNotFound(user_id)
            return _stamp_sessions_ended(conn, user_id)

    # -- audit log --------------------------------------------------------------------------

    def audit(
        self, *, actor: str, action: str, target: str = "", outcome: str = "ok", detail: str = ""
    ) -> None:
        check_choice("outcome", outcome, AUDIT_OUTCOMES)
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


def _stamp_sessions_ended(conn: sqlite3.Connection, user_id: int) -> int:
    """Advance the clock and stamp the user with it, inside the caller's write transaction."""
    conn.execute("UPDATE session_clock SET epoch = epoch + 1 WHERE id = 1")
    (epoch,) = conn.execute("SELECT epoch FROM session_clock WHERE id = 1").fetchone()
    conn.execute("UPDATE users SET session_epoch = ? WHERE id = ?", (epoch, user_id))
    return epoch
