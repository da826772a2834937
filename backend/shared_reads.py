"""SharedReads: an answer read at most once per short interval per key, shared by every caller.

When many staff send at the same moment, each turn asks the same questions (which models the
engine has, which are loaded, what admission says of this model at this context). Asking once
per turn costs every turn the round trip or the estimate, and the engine a burst of identical
requests. Here the first caller reads and the callers that arrive while it reads, or within
`ttl_s` after, get its answer. A read that raises keeps nothing (the next caller reads again);
`forget()` drops every answer, and an answer read across a `forget()` is not kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_KEYS = 256  # past this, answers older than the interval are dropped at the next keeping


@dataclass(frozen=True)
class _Answer(Generic[V]):
    read_at: float
    value: V


class SharedReads(Generic[K, V]):
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()  # the dicts and the generation
        self._answers: dict[K, _Answer[V]] = {}
        self._reading: dict[K, threading.Lock] = {}  # held while one caller reads that key
        self._generation = 0

    def get(self, key: K, read: Callable[[], V]) -> V:
        """The answer for `key` at most `ttl_s` old, reading it (once for all callers) if none."""
        fresh = self._fresh(key)
        if fresh is not None:
            return fresh.value
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            fresh = self._fresh(key)  # read by another caller while this one waited
            if fresh is not None:
                return fresh.value
            with self._lock:
                generation = self._generation
            value = read()
            with self._lock:
                if generation == self._generation:
                    self._keep(key, _Answer(self._clock(), value))
            return value

    def forget(self) -> None:
        """Drop every answer: the next caller of each key reads afresh."""
        with self._lock:
            self._generation += 1
            self._answers.clear()

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
