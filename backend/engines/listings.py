"""The engine's installed and loaded models for the chat path, read once per short interval.

Every chat turn checks that its model is installed (Ollama's /api/tags) and whether it is
loaded at the asked context (/api/ps, for admission). When many staff send at the same moment,
asking the engine once per turn costs each turn an HTTP round trip and the engine a burst of
identical requests; here one turn asks and the turns that arrive while it asks, or within
`ttl_s` after, use its answer. A failure is not kept: the next turn asks again. An admin's
pull, load, unload or delete calls `forget()`, so the lists follow those at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from backend.engines.base import ChatEngine, InstalledModel, LoadedModel

T = TypeVar("T")

DEFAULT_TTL_S = 1.0


@dataclass(frozen=True)
class _Entry(Generic[T]):
    engine_id: int  # the engine it came from: a swapped engine starts afresh
    read_at: float
    value: tuple[T, ...]


class _Listing(Generic[T]):
    """One list, refreshed by one caller at a time (the others wait for its answer)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._reading = threading.Lock()  # held while one caller asks the engine
        self._entry: _Entry[T] | None = None
        self._generation = 0  # forget() bumps it: an answer read before then is not kept

    def get(self, engine: ChatEngine, read: Callable[[], list[T]]) -> list[T]:
        fresh = self._fresh(engine)
        if fresh is not None:
            return list(fresh)
        with self._reading:
            fresh = self._fresh(engine)  # asked by another caller while this one waited
            if fresh is not None:
                return list(fresh)
            generation = self._generation
            value = tuple(read())  # EngineError propagates and nothing is kept
            if generation == self._generation:
                self._entry = _Entry(id(engine), self._clock(), value)
            return list(value)

    def forget(self) -> None:
        self._generation += 1
        self._entry = None

    def _fresh(self, engine: ChatEngine) -> tuple[T, ...] | None:
        entry = self._entry
        if entry is None or entry.engine_id != id(engine):
            return None
        if self._clock() - entry.read_at > self._ttl_s:
            return None
        return entry.value


class ModelListings:
    """`installed()` and `loaded()` of the current engine, at most `ttl_s` old."""

    def __init__(
        self,
        engine: Callable[[], ChatEngine],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._installed: _Listing[InstalledModel] = _Listing(ttl_s, clock)
        self._loaded: _Listing[LoadedModel] = _Listing(ttl_s, clock)

    def installed(self) -> list[InstalledModel]:
        """The engine's list_models(), shared by the callers of one interval."""
        engine = self._engine()
        return self._installed.get(engine, engine.list_models)

    def loaded(self) -> list[LoadedModel]:
        """The engine's loaded_models(), shared by the callers of one interval."""
        engine = self._engine()
        return self._loaded.get(engine, engine.loaded_models)

    def forget(self) -> None:
        """Read both afresh next time (a model was pulled, loaded, unloaded or deleted)."""
        self._installed.forget()
        self._loaded.forget()
