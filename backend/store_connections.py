"""One SQLite connection per thread, write transactions, and closing them all together."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


class StoreError(Exception):
    """The store cannot do what was asked."""


class _Holder:
    """One thread's connection; weak-referencable, so a finished thread's connection is freed."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the store's pragmas."""
    # check_same_thread=False only so that close() may close every thread's connection;
    # otherwise each connection is used by the one thread that opened it.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    # FULL: a commit is on disk (WAL fsynced) before the write method returns.
    conn.execute("PRAGMA synchronous = FULL")
    return conn


class ThreadConnections:
    """Hands each thread its own connection to one database file.

    Per-thread connections let readers run while another thread writes (WAL), and keep
    sqlite3 objects out of reach of other threads. Writers queue on SQLite's own lock,
    waiting up to BUSY_TIMEOUT_MS.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        holder = getattr(self._local, "holder", None)
        if holder is not None and not self._closed:
            return holder.conn
        with self._lock:
            if self._closed:
                raise StoreError(f"The store at {self.path} is closed.")
            holder = _Holder(connect(self.path))
            self._open.add(holder)
        self._local.holder = holder
        return holder.conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its start; commits on exit."""
        conn = self.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            holders = list(self._open)
            self._open.clear()
        for holder in holders:
            holder.conn.close()
