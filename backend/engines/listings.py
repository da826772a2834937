"""The engine's installed and loaded models for the chat path, read once per short interval.

Every chat turn checks that its model is installed (Ollama's /api/tags) and whether it is
loaded at the asked context (/api/ps, for admission). When many staff send at the same moment,
one turn asks the engine and the turns that arrive while it asks, or within `ttl_s` after, use
its answer (backend.shared_reads). A failure is not kept: the next turn asks again. An admin's
pull, load, unload or delete calls `forget()`, so the lists follow those at once; a swapped
engine (Admin → Engines) is asked afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backend.engines.base import ChatEngine, InstalledModel, LoadedModel
from backend.shared_reads import SharedReads

DEFAULT_TTL_S = 1.0


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
        self._installed: SharedReads[int, tuple[InstalledModel, ...]] = SharedReads(ttl_s, clock)
        self._loaded: SharedReads[int, tuple[LoadedModel, ...]] = SharedReads(ttl_s, clock)

    def installed(self) -> list[InstalledModel]:
        """The engine's list_models(), shared by the callers of one interval."""
        engine = self._engine()
        return list(self._installed.get(id(engine), lambda: tuple(engine.list_models())))

    def loaded(self) -> list[LoadedModel]:
        """The engine's loaded_models(), shared by the callers of one interval."""
        engine = self._engine()
        return list(self._loaded.get(id(engine), lambda: tuple(engine.loaded_models())))

    def forget(self) -> None:
        """Read both afresh next time (a model was pulled, loaded, unloaded or deleted)."""
        self._installed.forget()
        self._loaded.forget()
