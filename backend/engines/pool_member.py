"""One engine of the pool: its configuration, its last probe, its chats in flight, its card.

The probe uses its own client with a short timeout, so a server that stops answering is
found out in seconds whatever the chat client's (long) read timeout is.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from backend.engines.base import (
    ChatEngine,
    EngineError,
    EngineUnavailable,
    InstalledModel,
    LoadedModel,
    ModelManager,
    model_key,
)
from backend.engines.config import EngineSpec
from backend.engines.host_memory import HostMemory, read_host_memory
from backend.engines.server_facts import ServerFacts

log = logging.getLogger(__name__)

# Why an OpenAI-compatible server is never asked to pull, load or delete.
CHOOSES_MODELS = "OpenAI-compatible servers choose their models when they start"
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class MemberState:
    """What the last probe found."""

    up: bool
    detail: str
    version: str = ""
    installed: tuple[InstalledModel, ...] = ()
    loaded: tuple[LoadedModel, ...] = ()
    checked_at: float = 0.0  # time.monotonic() of the probe; 0 before the first


@dataclass(frozen=True)
class EngineCard:
    """One engine as the Hardware page shows it; the API key is only "set" or not."""

    name: str
    kind: str
    url: str
    up: bool
    detail: str
    version: str
    loaded: tuple[LoadedModel, ...]
    installed_count: int
    can_manage_models: bool
    chats_in_flight: int
    server_facts: str  # vLLM / llama.cpp server facts, "" where there are none
    gpu_facts: str  # where its GPU memory comes from, and what it says
    api_key_set: bool
    gpu_source: str = ""  # local, dcgm, declared or none: "local" is filled in from this box


class PoolMember:
    """A configured engine inside the pool."""

    def __init__(self, spec: EngineSpec, engine: ChatEngine, probe: ChatEngine) -> None:
        self.spec = spec
        self.engine = engine
        self._probe = probe
        self._lock = threading.Lock()
        self._state = MemberState(False, "not checked yet")
        self._in_flight = 0
        self._retired = False  # removed from the pool: closed once its last chat ends
        self._closed = False

    def __repr__(self) -> str:
        spec = self.spec
        return f"PoolMember(name={spec.name!r}, kind={spec.kind!r}, url={spec.url!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def can_manage_models(self) -> bool:
        return isinstance(self.engine, ModelManager)  # the ability, not a flag

    @property
    def state(self) -> MemberState:
        with self._lock:
            return self._state

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def retired(self) -> bool:
        with self._lock:
            return self._retired

    def chat_started(self) -> bool:
        """Count a chat in; False (nothing counted) once the member was removed from the pool."""
        with self._lock:
            if self._retired:
                return False
            self._in_flight += 1
            return True

    def chat_ended(self) -> None:
        with self._lock:
            self._in_flight -= 1
            close = self._retired and not self._in_flight and not self._closed
            self._closed = self._closed or close
        if close:
            close_member(self)

    def retire(self) -> None:
        """Removed from the pool: no new chats; closed now, or when its last chat ends."""
        with self._lock:
            self._retired = True
            close = not self._in_flight and not self._closed
            self._closed = self._closed or close
        if close:
            close_member(self)

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def respecified(self, spec: EngineSpec) -> None:
        """The same server under a new name or GPU facts: keep the state, take the new spec."""
        with self._lock:
            self.spec = spec

    def own_name(self, model: str) -> str | None:
        """This engine's spelling of `model`, or None when it does not list it."""
        key = model_key(model)
        state = self.state
        names = [m.name for m in state.loaded] + [m.name for m in state.installed]
        return next((name for name in names if model_key(name) == key), None)

    def has_loaded(self, model: str) -> bool:
        key = model_key(model)
        return any(model_key(m.name) == key for m in self.state.loaded)

    def load(self, model: str, num_ctx: int) -> None:
        """Load `model` on this engine (placement chose it), then probe it."""
        if not self.state.up:
            raise EngineUnavailable(f"Engine '{self.name}' is down ({self.state.detail}).")
        if not isinstance(self.engine, ModelManager):
            raise EngineUnavailable(f"Engine '{self.name}' cannot load models ({CHOOSES_MODELS}).")
        try:
            self.engine.load(self.own_name(model) or model, num_ctx)
        finally:
            self.probe()

    # -- probing -------------------------------------------------------------------------

    def probe(self) -> MemberState:
        """Ask the engine how it is; never raises. A busy llama-cpp-python server is only
        checked for life: its /v1/models would end the reply it is writing."""
        if self.closed:  # removed from the pool and closed: nothing to ask with
            return self.state
        if self.spec.kind == "openai" and self.in_flight:
            state = self._liveness()
        else:
            state = self._full_probe()
        self._set(state)
        return state

    def mark_down(self, reason: str) -> None:
        """A chat found the engine gone: take its models off the list before the next probe."""
        self._set(MemberState(False, reason, checked_at=time.monotonic()))

    def _full_probe(self) -> MemberState:
        now = time.monotonic()
        try:
            if self.spec.kind == "openai":
                loaded = tuple(self._probe.loaded_models())
                installed = tuple(InstalledModel(m.name, m.size_bytes) for m in loaded)
                names = ", ".join(m.name for m in loaded) or "no models"
                detail = f"OpenAI-compatible server at {self.spec.url} ({names})"
                return MemberState(True, detail, "", installed, loaded, now)
            status = self._probe.status()
            if not status.reachable:
                return MemberState(False, status.detail, checked_at=now)
            installed = tuple(self._probe.list_models())
            loaded = tuple(self._probe.loaded_models())
            return MemberState(True, status.detail, status.version, installed, loaded, now)
        except EngineError as exc:
            return MemberState(False, str(exc), checked_at=now)
        except Exception as exc:  # a probe must never end the prober thread
            if not self.closed:  # (a member closed mid-probe fails here, as expected)
                log.exception("probing engine %s failed", self.name)
            return MemberState(False, f"{type(exc).__name__}: {exc}", checked_at=now)

    def _liveness(self) -> MemberState:
        before = self.state
        try:
            httpx.get(self.spec.url, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return MemberState(False, f"{self.spec.url} stopped answering: {exc}")
        return MemberState(
            True, before.detail, before.version, before.installed, before.loaded, time.monotonic()
        )

    def _set(self, state: MemberState) -> None:
        with self._lock:
            before = self._state
            self._state = state
        if before.up != state.up:
            now = "up" if state.up else "down"
            # The first probe only tells how things are; a change after it is news.
            level = logging.WARNING if before.checked_at else logging.INFO
            log.log(level, "engine %s is %s: %s", self.name, now, state.detail)

    # -- the card ------------------------------------------------------------------------

    def card(self) -> EngineCard:
        state = self.state
        facts = self.server_facts(state)
        kind = facts.kind if facts is not None else ""
        return EngineCard(
            name=self.name,
            kind=self.spec.kind,
            url=self.spec.url,
            up=state.up,
            detail=state.detail,
            version=state.version,
            loaded=state.loaded,
            installed_count=len(state.installed),
            can_manage_models=self.can_manage_models,
            chats_in_flight=self.in_flight,
            server_facts=facts.summary() if facts is not None else "",
            gpu_facts=read_host_memory(self.spec, state.loaded, kind).describe(),
            api_key_set=bool(self.spec.api_key),
            gpu_source=self.spec.gpu_facts.source,
        )

    def server_facts(self, state: MemberState | None = None) -> ServerFacts | None:
        """What an OpenAI-compatible server that is up says about itself; None otherwise."""
        state = state or self.state
        read = getattr(self.engine, "server_facts", None)
        if not state.up or self.spec.kind != "openai" or read is None:
            return None
        facts = read()
        return facts if isinstance(facts, ServerFacts) else None

    def host_memory(self) -> HostMemory:
        """This engine's host GPU memory by its gpu_facts (a vLLM server's GPU is taken)."""
        state = self.state
        facts = self.server_facts(state)
        return read_host_memory(self.spec, state.loaded, facts.kind if facts else "")


def member_from_spec(spec: EngineSpec, **chat_kwargs: Any) -> PoolMember:
    """A member with a chat client and a short-timeout probe client for `spec`'s server."""
    if spec.kind == "ollama":
        from backend.engines.ollama import OllamaEngine

        chat: ChatEngine = OllamaEngine(spec.url, **chat_kwargs)
        probe: ChatEngine = OllamaEngine(spec.url, timeout_s=PROBE_TIMEOUT_S)
    else:
        from backend.engines.openai_compat import OpenAICompatEngine

        chat = OpenAICompatEngine(spec.url, name=spec.name, api_key=spec.api_key, **chat_kwargs)
        probe = OpenAICompatEngine(
            spec.url, name=spec.name, api_key=spec.api_key, timeout_s=PROBE_TIMEOUT_S
        )
    return PoolMember(spec, chat, probe)


def close_member(member: PoolMember) -> None:
    for engine in (member.engine, member._probe):
        close = getattr(engine, "close", None)
        if close is not None:
            close()
