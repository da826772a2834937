"""One SQLite connection per thread, write transactions, and closing them all together."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections import deque
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


class WriteTurns:
    """A first-come, first-served lock for this process's writers.

    SQLite's busy handler polls with growing sleeps (up to 100 ms), so a writer that commits
    and begins again at once (an import's batches) keeps the lock and starves the rest. Here a
    release hands the turn straight to the longest waiter, so a login waits one batch at most.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._holder: int | None = None

    def acquire(self, timeout_s: float) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._holder == me:
                raise StoreError("A write transaction cannot begin inside another one.")
            if self._holder is None:
                self._holder = me
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if not turn.wait(timeout_s):
            with self._mutex:
                if not turn.is_set():  # not handed over meanwhile: leave the queue
                    self._waiting.remove(turn)
                    return False
        with self._mutex:
            self._holder = me
        return True

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._holder = -1  # held for the next in line until it wakes and claims it
                self._waiting.popleft().set()
            else:
                self._holder = None


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
    sqlite3 objects out of reach of other threads. This process's writers take turns in
    arrival order (WriteTurns); against other processes they wait on SQLite's own lock. Either
    wait lasts up to BUSY_TIMEOUT_MS.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._closed = False
        self._turns = WriteTurns()

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
        if not self._turns.acquire(BUSY_TIMEOUT_MS / 1000):
            raise StoreError(
                f"The database stayed busy for {BUSY_TIMEOUT_MS / 1000:.0f} s; try again."
            )
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            self._turns.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            holders = list(self._open)
            self._open.clear()
        for holder in holders:
            holder.conn.close()
