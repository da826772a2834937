"""SharedReads: an answer read at most once per short interval per key, shared by every caller.

When many staff send at the same moment, each turn asks the same questions (which models the
engine has, which are loaded, what admission says of this model at this context). Asking once
per turn costs every turn the round trip or the estimate, and the engine a burst of identical
requests. Here the first caller reads and the callers that arrive while it reads, or within
`ttl_s` after, get its answer. A read that raises keeps nothing (the next caller reads again);
`forget()` drops every answer, and an answer read across a `forget()` is not kept.

With `refresh_after_s` (below `ttl_s`), an answer older than that is still given, and one read
in the background replaces it: under steady use no caller waits on the read, and none is given
an answer older than `ttl_s` (past that, the caller reads, as without it). A background read
that raises keeps the old answer, which ages out at `ttl_s`; the next read then raises to its
caller.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

REFRESHER_IDLE_S = 30.0  # the read-ahead thread ends after this long with nothing to read
MAX_KEYS = 256  # past this, answers older than the interval are dropped at the next keeping


@dataclass(frozen=True)
class _Answer(Generic[V]):
    read_at: float
    value: V


class SharedReads(Generic[K, V]):
    def __init__(
        self,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        refresh_after_s: float | None = None,
    ) -> None:
        if refresh_after_s is not None and not 0 <= refresh_after_s < ttl_s:
            raise ValueError(f"refresh_after_s must be in [0, ttl_s), got {refresh_after_s!r}")
        self._ttl_s = ttl_s
        self._refresh_after_s = refresh_after_s
        self._clock = clock
        self._lock = threading.Lock()  # the dicts and the generation
        self._answers: dict[K, _Answer[V]] = {}
        self._reading: dict[K, threading.Lock] = {}  # held while one caller reads that key
        self._generation = 0
        self._refreshes: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._refresher_running = False

    def get(self, key: K, read: Callable[[], V]) -> V:
        """The answer for `key` at most `ttl_s` old, reading it (once for all callers) if none."""
        fresh = self._fresh(key)
        if fresh is not None:
            if self._due_for_refresh(fresh):
                self._refresh_in_background(key, read)
            return fresh.value
        with self._reading_lock(key):
            fresh = self._fresh(key)  # read by another caller while this one waited
            if fresh is not None:
                return fresh.value
            return self._read(key, read)

    def forget(self) -> None:
        """Drop every answer: the next caller of each key reads afresh."""
        with self._lock:
            self._generation += 1
            self._answers.clear()

    def _due_for_refresh(self, answer: _Answer[V]) -> bool:
        after = self._refresh_after_s
        return after is not None and self._clock() - answer.read_at > after

    def _reading_lock(self, key: K) -> threading.Lock:
        with self._lock:
            return self._reading.setdefault(key, threading.Lock())

    def _read(self, key: K, read: Callable[[], V]) -> V:
        """Read and keep the answer, unless a forget() came while it was read; hold the key's
        reading lock."""
        with self._lock:
            generation = self._generation
        value = read()
        with self._lock:
            if generation == self._generation:
                self._keep(key, _Answer(self._clock(), value))
        return value

    def _refresh_in_background(self, key: K, read: Callable[[], V]) -> None:
        """One thread reads the key afresh, unless a caller or another thread reads it now."""
        reading = self._reading_lock(key)
        if not reading.acquire(blocking=False):
            return

        def refresh() -> None:
            try:
                answer = self._fresh(key)  # gone after a forget(): the next caller reads
                if answer is not None and self._due_for_refresh(answer):
                    self._read(key, read)
            except Exception:  # the old answer stays until it ages out
                pass
            finally:
                reading.release()

        try:
            self._submit(refresh)
        except BaseException:
            reading.release()
            raise

    def _submit(self, refresh: Callable[[], None]) -> None:
        """Hand a read-ahead to the one thread that runs them, starting it if none runs: a
        thread per read would cost the caller its start (~0.6 ms on a busy core). The thread is
        a daemon, so an engine that never answers cannot hold up the process's exit, and it
        ends once idle for REFRESHER_IDLE_S."""
        with self._lock:
            if not self._refresher_running:  # a failed start queues nothing
                threading.Thread(
                    target=self._run_refreshes, name="shared-read", daemon=True
                ).start()
                self._refresher_running = True
            self._refreshes.put(refresh)

    def _run_refreshes(self) -> None:
        while True:
            try:
                self._refreshes.get(timeout=REFRESHER_IDLE_S)()
            except queue.Empty:
                with self._lock:  # puts happen under the lock: none can slip in unseen
                    if self._refreshes.empty():
                        self._refresher_running = False
                        return

    def _fresh(self, key: K) -> _Answer[V] | None:
        with self._lock:
            answer = self._answers.get(key)
        if answer is None or self._clock() - answer.read_at > self._ttl_s:
            return None
        return answer

    def _keep(self, key: K, answer: _Answer[V]) -> None:
        """Under the lock: keep the answer; bound the dicts by dropping stale answers."""
        self._answers[key] = answer
        if len(self._answers) > MAX_KEYS:
            now = self._clock()
            for stale in [k for k, a in self._answers.items() if now - a.read_at > self._ttl_s]:
                del self._answers[stale]
        if len(self._reading) > MAX_KEYS:  # keys read once and never since (or that failed)
            self._reading = {k: lock for k, lock in self._reading.items() if k in self._answers}
