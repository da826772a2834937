"""The api_keys table: one row per key a user made; the secret itself is never stored.

A key is found by its public prefix (the part before the secret), and its SHA-256 is compared by
the caller (backend.auth.api_keys) in constant time. Revoking stamps revoked_at and keeps the
row, so the list and the audit log still name the key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from backend.store.connections import StoreError, ThreadConnections
from backend.store.values import now_iso

_SELECT = (
    "SELECT k.id, k.user_id, u.name, u.role, u.disabled, k.name, k.prefix, k.secret_hash,"
    " k.created_at, k.last_used_at, k.revoked_at FROM api_keys k JOIN users u ON u.id = k.user_id"
)


class ApiKeyNotFound(StoreError):
    def __init__(self, key_id: int) -> None:
        super().__init__(f"API key {key_id} was not found.")
        self.key_id = key_id


@dataclass(frozen=True)
class ApiKeyRecord:
    """One stored key with its owner's name, role and status (read on every request)."""

    id: int
    user_id: int
    user: str
    role: str
    user_disabled: bool
    name: str
    prefix: str
    secret_hash: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def _record(row: tuple) -> ApiKeyRecord:
    values = list(row)
    values[4] = bool(values[4])
    return ApiKeyRecord(*values)


class ApiKeyTables:
    """Reading and writing the api_keys table; Store inherits these methods."""

    _connections: ThreadConnections

    def add_api_key(self, user_id: int, name: str, prefix: str, secret_hash: str) -> ApiKeyRecord:
        try:
            with self._connections.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO api_keys (user_id, name, prefix, secret_hash, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user_id, name, prefix, secret_hash, now_iso()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"The API key could not be stored: {exc}.") from exc
        key_id = cursor.lastrowid
        assert key_id is not None
        return self.get_api_key(key_id)

    def get_api_key(self, key_id: int) -> ApiKeyRecord:
        row = self._connections.get().execute(f"{_SELECT} WHERE k.id = ?", (key_id,)).fetchone()
        if row is None:
            raise ApiKeyNotFound(key_id)
        return _record(row)

    def api_key_by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        row = self._connections.get().execute(f"{_SELECT} WHERE k.prefix = ?", (prefix,)).fetchone()
        return _record(row) if row else None

    def list_api_keys(self, user_id: int | None = None) -> list[ApiKeyRecord]:
        """One user's keys, or everyone's (user_id None), newest first."""
        where, params = ("WHERE k.user_id = ?", (user_id,)) if user_id is not None else ("", ())
        rows = self._connections.get().execute(f"{_SELECT} {where} ORDER BY k.id DESC", params)
        return [_record(row) for row in rows]

    def revoke_api_key(self, key_id: int) -> ApiKeyRecord:
        """Stamp revoked_at (once: revoking again keeps the first time)."""
        with self._connections.write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                (now_iso(), key_id),
            )
            if cursor.rowcount == 0:
                raise ApiKeyNotFound(key_id)
        return self.get_api_key(key_id)

    def touch_api_key(self, key_id: int) -> None:
        """Record that the key was just used."""
        with self._connections.write() as conn:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now_iso(), key_id))
