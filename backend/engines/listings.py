"""The engine's installed and loaded models for the chat path, read once per short interval.

Every chat turn checks that its model is installed (Ollama's /api/tags) and whether it is
loaded at the asked context (/api/ps, for admission). When many staff send at the same moment,
one turn asks the engine and the turns that arrive while it asks, or within a second after, use
its answer (backend.shared_reads). After that second the answer is still used, for at most
`ttl_s`, while one background read replaces it: under steady use no turn waits on these two
round trips (they were most of a lone turn's own path in the load bench). A failure is not
kept: past `ttl_s` the next turn asks again, and sees the engine's error. An admin's
pull, load, unload or delete calls `forget()`, so the lists follow those at once; a swapped
engine (Admin → Engines) is asked afresh.

A model's description (`show`: its tensors, for admission's estimate) is kept per installed
file, by the digest the engine lists: a file's tensors never change, and Ollama's verbose
/api/show reads the GGUF again each time (about 0.2 s for the bundled model in the load bench,
waited by the first turn of every second). A model the engine lists without a digest is
described afresh each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backend.engines.base import ChatEngine, EngineError, InstalledModel, LoadedModel, model_key
from backend.estimate.spec import ModelSpec
from backend.shared_reads import SharedReads

DEFAULT_TTL_S = 3.0  # the oldest lists a turn is given
DEFAULT_REFRESH_AFTER_S = 1.0  # lists older than this are read afresh in the background
SPEC_TTL_S = 3600.0  # a digest's tensors do not change; this bounds what a gone engine keeps


class ModelListings:
    """`installed()` and `loaded()` of the current engine, at most `ttl_s` old; read afresh in
    the background once older than `refresh_after_s` (None: only when a caller needs them)."""

    def __init__(
        self,
        engine: Callable[[], ChatEngine],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        refresh_after_s: float | None = DEFAULT_REFRESH_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._installed: SharedReads[int, tuple[InstalledModel, ...]] = SharedReads(
            ttl_s, clock, refresh_after_s=refresh_after_s
        )
        self._loaded: SharedReads[int, tuple[LoadedModel, ...]] = SharedReads(
            ttl_s, clock, refresh_after_s=refresh_after_s
        )
        self._specs: SharedReads[tuple[int, str, str], ModelSpec] = SharedReads(SPEC_TTL_S, clock)

    def installed(self) -> list[InstalledModel]:
        """The engine's list_models(), shared by the callers of one interval."""
        engine = self._engine()
        return list(self._installed.get(id(engine), lambda: tuple(engine.list_models())))

    def loaded(self) -> list[LoadedModel]:
        """The engine's loaded_models(), shared by the callers of one interval."""
        engine = self._engine()
        return list(self._loaded.get(id(engine), lambda: tuple(engine.loaded_models())))

    def spec(self, model: str) -> ModelSpec:
        """The engine's show(model), read once per installed file (the digest it lists)."""
        engine = self._engine()
        try:
            listed = self.installed()
        except EngineError:
            listed = []
        key = model_key(model)
        digest = next((m.digest for m in listed if model_key(m.name) == key and m.digest), "")
        if not digest:
            return engine.show(model)
        return self._specs.get((id(engine), key, digest), lambda: engine.show(model))

    def forget(self) -> None:
        """Read everything afresh next time (a model was pulled, loaded, unloaded or deleted)."""
        self._installed.forget()
        self._loaded.forget()
        self._specs.forget()
