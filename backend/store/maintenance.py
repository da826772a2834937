"""Whole-file work on the store: an online copy, checks of a copy, a write probe, settling a file.

These open their own short-lived connections by path, so they work on a database that a running
Hearth holds open (WAL: a reader never blocks its writers) and on copies no Store has opened.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from backend.store.connections import BUSY_TIMEOUT_MS, StoreError
from backend.store.migrations import MIGRATION_NAMES, MIGRATION_SET
from backend.store.values import now_iso

REQUIRED_TABLES = ("users", "conversations", "messages", "messages_fts")


@dataclass(frozen=True)
class FileCheck:
    """What a database file holds and whether SQLite finds it sound."""

    integrity: str  # "ok", or SQLite's integrity_check findings
    full_text: str  # "ok", or why the full-text index disagrees with the messages
    migrations: tuple[str, ...]  # Hearth migrations recorded in the file, in order
    missing_tables: tuple[str, ...]
    users: int
    conversations: int
    messages: int

    @property
    def unknown_migrations(self) -> tuple[str, ...]:
        """Migrations this Hearth does not have (the file comes from a newer one)."""
        return tuple(name for name in self.migrations if name not in MIGRATION_NAMES)

    def problems(self) -> list[str]:
        found = []
        if self.integrity != "ok":
            found.append(f"integrity_check found: {self.integrity}")
        if self.missing_tables:
            found.append(f"it has no {', '.join(self.missing_tables)} table(s)")
        elif self.full_text != "ok":
            found.append(f"the full-text index does not match the messages: {self.full_text}")
        if not self.migrations:
            found.append("it records no Hearth migrations (is it a Hearth database?)")
        if self.unknown_migrations:
            found.append(
                "it comes from a newer Hearth (migrations "
                f"{', '.join(self.unknown_migrations)} are unknown here)"
            )
        return found


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to an existing file (never creates one)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                           isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)  # fmt: skip
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def copy_online(source: Path, dest: Path) -> None:
    """Copy `source` into the new file `dest` as one consistent snapshot, while others write.

    SQLite's online backup API in a single step reads the source inside one read transaction:
    writers carry on (WAL) and the copy holds exactly the transactions committed before it
    began. The copy is left in rollback-journal mode: one self-contained file.
    """
    if dest.exists():
        raise StoreError(f"{dest} exists already")
    try:
        with (
            closing(_connect(source)) as src,
            closing(sqlite3.connect(dest, isolation_level=None)) as out,
        ):
            src.backup(out)  # pages=-1: all at once, one snapshot
            out.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        dest.unlink(missing_ok=True)
        raise StoreError(f"could not copy {source} to {dest}: {exc}") from exc


def check_file(path: Path) -> FileCheck:
    """integrity_check, the full-text index against the messages, the recorded migrations.

    Opens the file for writing (FTS5's check is an INSERT that changes nothing): check a copy.
    """
    if not path.is_file():
        raise StoreError(f"there is no file at {path}")
    try:
        with closing(_connect(path)) as conn:
            integrity = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check(20)"))
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            missing = tuple(t for t in REQUIRED_TABLES if t not in tables)
            full_text = "ok" if missing else _full_text_check(conn)
            migrations = _migrations(conn) if "_sqlite_migrations" in tables else ()
            counts = [
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if table in tables
                else 0
                for table in ("users", "conversations", "messages")
            ]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable SQLite database: {exc}") from exc
    return FileCheck(integrity, full_text, migrations, missing, *counts)


def _full_text_check(conn: sqlite3.Connection) -> str:
    # rank = 1: compare the index with the external content table, not only with itself.
    try:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return "ok"


def _migrations(conn: sqlite3.Connection) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
        (MIGRATION_SET,),
    )
    return tuple(name for (name,) in rows)


def probe_write(path: Path, timeout_s: float = 2.0) -> None:
    """Commit one small write through a new connection; StoreError saying why it cannot.

    A new connection sees what a restart would: a file or folder turned read-only, a full or
    failed disk, a lock held elsewhere for longer than timeout_s.
    """
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                               isolation_level=None, timeout=timeout_s)  # fmt: skip
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path} for writing: {exc}") from exc
    with closing(conn):
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO ready_probe (id, checked_at) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                (now_iso(),),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot write to {path}: {exc}") from exc


def settle(path: Path) -> None:
    """Fold the write-ahead log into the file and leave rollback-journal mode, before a move.

    Afterwards the one file holds every committed transaction and no -wal / -shm beside it
    belongs to it. Only for a database nobody else has open.
    """
    try:
        with closing(_connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        raise StoreError(f"could not settle {path}: {exc}") from exc
