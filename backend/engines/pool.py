"""EnginePool: the chat side of the Engine protocol over several engines, followed up and down.

A prober thread per engine asks it how it is every `interval_s` (short timeouts), so an engine
that stops answering is marked down within seconds and its models leave the list, and one
that comes back (or an Ollama started after Hearth) is used again without a restart.
A chat goes to an up engine that has the model loaded, else to one that has it installed
(fewest chats in flight first). Model management goes to an engine that can do it.
When no configured engine is up, the fallback engine (the embedded one) serves, if given.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    Engine,
    EngineBusy,
    EngineStatus,
    EngineUnavailable,
    InstalledModel,
    LoadedModel,
    ModelManager,
    ModelNotFound,
    ModelSpec,
    PullProgress,
    checked_model_name,
    model_key,
)
from backend.engines.config import EngineSpec
from backend.engines.pool_member import (
    CHOOSES_MODELS,
    EngineCard,
    PoolMember,
    close_member,
    member_from_spec,
)
from backend.engines.pool_probers import Probers, identity, probe_all

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PROBE_INTERVAL_S = 1.0


class EnginePool:
    """Several engines behind one Engine; `members` in the order they were configured."""

    name = "pool"

    def __init__(
        self,
        members: Sequence[PoolMember],
        *,
        fallback: Engine | None = None,
        interval_s: float = DEFAULT_PROBE_INTERVAL_S,
    ) -> None:
        if not members:
            raise ValueError("an engine pool needs at least one engine")
        self.members = tuple(members)  # replaced whole by reconfigure(); read it once per use
        self.fallback = fallback
        self.probers = Probers(interval_s)
        self._lock = threading.Lock()  # members, started, the fallback's count
        self._changing = threading.Lock()  # one reconfigure at a time
        self._started = False
        self._fallback_in_flight = 0
        # (model, num_ctx) -> the engine admission's placement would load it on, or None; set
        # by the services (placement lives above the engines), consulted when no engine has
        # the model loaded.
        self.placement_hint: Callable[[str, int], str | None] | None = None

    def __repr__(self) -> str:
        return f"EnginePool({', '.join(m.name for m in self.members)})"

    # -- lifecycle ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Probe every engine now, all at once, and wait for the answers."""
        probe_all(self.members)

    def start(self) -> None:
        """A first probe of every engine, then one prober thread each."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.refresh()
        with self._lock:
            self.probers.follow(self.members)

    def reconfigure(
        self,
        specs: Sequence[EngineSpec],
        make: Callable[[EngineSpec], PoolMember] = member_from_spec,
    ) -> None:
        """Follow a new list of engines without a restart.

        A spec with the same kind, url and API key as a member keeps that member (its state,
        its chats; the new name and GPU facts are taken); the others get a new member, probed
        before this returns, then followed. Members left out stop being probed and are closed
        once their chats in flight end; no new chat goes to them.
        """
        if not specs:
            raise ValueError("an engine pool needs at least one engine")
        with self._changing:
            self._reconfigure(specs, make)

    def _reconfigure(
        self, specs: Sequence[EngineSpec], make: Callable[[EngineSpec], PoolMember]
    ) -> None:
        with self._lock:
            before = self.members
            kept: dict[tuple[str, str, str | None], PoolMember | None] = {
                identity(m.spec): m for m in before
            }
            members = [kept.pop(identity(spec), None) or make(spec) for spec in specs]
            for member, spec in zip(members, specs, strict=True):
                member.respecified(spec)
            removed = [m for m in kept.values() if m is not None]
            added = [m for m in members if m not in before]
        probe_all(added)
        with self._lock:
            self.members = tuple(members)
            if self._started:
                self.probers.follow(added)
        self.probers.stop(removed)
        for member in removed:
            member.retire()
        log.info("engines now %s (added %s; removed %s)", _names(members), _names(added),
                 _names(removed))  # fmt: skip

    def retire(self, *, keep_fallback: bool = False) -> None:
        """Stop following every engine, each closed once its chats in flight end: for a pool
        Hearth stops using while chats may still stream from it."""
        with self._lock:
            self._started = True  # a retired pool never starts its probers again
        self.probers.stop_all()
        for member in self.members:
            member.retire()
        if not keep_fallback:
            self._close_fallback()

    def close(self) -> None:
        self.probers.stop_all(join_s=5)
        for member in self.members:
            member.retire()
            close_member(member)  # at shutdown nothing waits for chats in flight
        self._close_fallback()

    def _close_fallback(self) -> None:
        close = getattr(self.fallback, "close", None)
        if close is not None:
            close()

    # -- state --------------------------------------------------------------------------

    def up_members(self) -> list[PoolMember]:
        return [m for m in self.members if m.state.up]

    def serving_fallback(self) -> bool:
        return self.fallback is not None and not self.up_members()

    @property
    def can_manage_models(self) -> bool:
        if self.serving_fallback():
            return isinstance(self.fallback, ModelManager)
        return any(m.can_manage_models for m in self.members)

    def status(self) -> EngineStatus:
        """Reachable while any engine is up (or the fallback serves); never raises."""
        up = self.up_members()
        parts = [
            f"{m.name}: {m.state.detail}" if m.state.up else f"{m.name} is down ({m.state.detail})"
            for m in self.members
        ]
        head = f"{len(up)} of {len(self.members)} engines up"
        if self.serving_fallback() and self.fallback is not None:
            fallback = self.fallback.status()
            head += f"; the {fallback.name} engine serves meanwhile"
            return EngineStatus(self.name, fallback.reachable, f"{head}. {'; '.join(parts)}")
        return EngineStatus(self.name, bool(up), f"{head}. {'; '.join(parts)}")

    def gauges(self) -> list[tuple[str, bool, int]]:
        """(engine, up, chats in flight) per member by its configured name, then the fallback
        as "fallback:<name>" (a configured name cannot hold a colon)."""
        rows = [(m.name, m.state.up, m.in_flight) for m in self.members]
        if self.fallback is not None:
            try:
                up = self.fallback.status().reachable
            except Exception:  # status() should not raise; a scrape must not fail for it
                up = False
            rows.append((f"fallback:{self.fallback.name}", up, self.fallback_in_flight))
        return rows

    def cards(self) -> list[EngineCard]:
        return [member.card() for member in self.members]

    def locations(self, model: str) -> list[str]:
        """The names of the up engines that have `model`, those with it loaded first."""
        return [m.name for m in self._candidates(model)]

    def list_models(self) -> list[InstalledModel]:
        """Every model of the up engines, once each (the first engine's entry)."""
        if self.serving_fallback() and self.fallback is not None:
            return self.fallback.list_models()
        up = self.up_members()
        if not up:
            raise EngineUnavailable(self._none_up())
        seen: dict[str, InstalledModel] = {}
        for member in up:
            for entry in member.state.installed:
                seen.setdefault(model_key(entry.name), entry)
        return list(seen.values())

    def loaded_models(self) -> list[LoadedModel]:
        if self.serving_fallback() and self.fallback is not None:
            return self.fallback.loaded_models()
        return [entry for member in self.up_members() for entry in member.state.loaded]

    # -- chat ---------------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        checked_model_name(model)
        if self.serving_fallback() and self.fallback is not None:
            return self._chat_on_fallback(self.fallback, model, messages, options, cancel)
        candidates = self._candidates(model)
        if not candidates:
            raise ModelNotFound(model, self._not_served(model))
        hint = self.placement_hint
        if hint is not None and not candidates[0].has_loaded(model):
            # Nobody has it loaded: the engine an admin's load would go to (placement) first.
            try:
                where = hint(model, options.num_ctx)
                candidates.sort(key=lambda m: m.name != where)
            except Exception:  # a hint that fails leaves the order as it was
                log.exception("placement hint for %s failed", model)
        return self._chat_on(candidates, model, messages, options, cancel)

    def _chat_on(
        self,
        candidates: Sequence[PoolMember],
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None,
    ) -> Iterator[ChatDelta | ChatStats]:
        """Stream from the first candidate; one found unreachable before its first word is
        marked down and the next is tried. After a word, its loss ends the reply."""
        for index, member in enumerate(candidates):
            started = False
            stream: Iterator[ChatDelta | ChatStats] | None = None
            if not member.chat_started():  # removed from the pool since the list was read
                if index == len(candidates) - 1:
                    raise EngineUnavailable(f"Engine '{member.name}' was removed from the pool.")
                continue
            try:
                stream = member.engine.chat(
                    member.own_name(model) or model, messages, options, cancel
                )
                for item in stream:
                    started = True
                    yield item
                return
            except EngineBusy:
                raise
            except EngineUnavailable as exc:
                member.mark_down(str(exc))
                if started or index == len(candidates) - 1:
                    raise EngineUnavailable(
                        f"Engine '{member.name}' stopped answering during the reply: {exc}"
                    ) from exc
                log.warning("engine %s unreachable, trying the next: %s", member.name, exc)
            finally:
                if stream is not None:
                    getattr(stream, "close", lambda: None)()
                member.chat_ended()

    def _chat_on_fallback(
        self,
        fallback: Engine,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None,
    ) -> Iterator[ChatDelta | ChatStats]:
        """The fallback's reply (asked for now, so it refuses now), counted while it streams."""
        return self._counted(fallback.chat(model, messages, options, cancel))

    def _counted(self, stream: Iterator[ChatDelta | ChatStats]) -> Iterator[ChatDelta | ChatStats]:
        with self._lock:
            self._fallback_in_flight += 1
        try:
            yield from stream
        finally:
            getattr(stream, "close", lambda: None)()
            with self._lock:
                self._fallback_in_flight -= 1

    @property
    def fallback_in_flight(self) -> int:
        with self._lock:
            return self._fallback_in_flight

    def _candidates(self, model: str) -> list[PoolMember]:
        up = [m for m in self.up_members() if m.own_name(model) is not None]
        loaded = sorted((m for m in up if m.has_loaded(model)), key=lambda m: m.in_flight)
        installed = sorted((m for m in up if m not in loaded), key=lambda m: m.in_flight)
        return loaded + installed

    # -- model management: to an engine that can -----------------------------------------

    def show(self, model: str) -> ModelSpec:
        return self._on_owner(model, False, lambda e, name: e.show(name))

    def pull(self, model: str) -> Iterator[PullProgress]:
        checked_model_name(model)
        member = self._manager(model)
        yield from member.engine.pull(model)  # type: ignore[attr-defined]
        member.probe()

    def delete(self, model: str) -> None:
        self._on_owner(model, True, lambda e, name: e.delete(name))

    def load(self, model: str, num_ctx: int) -> None:
        self._on_owner(model, True, lambda e, name: e.load(name, num_ctx))

    def unload(self, model: str) -> None:
        self._on_owner(model, True, lambda e, name: e.unload(name))

    # -- placement: an admin's load on a named engine --------------------------------------

    def member(self, name: str) -> PoolMember | None:
        """The configured engine called `name`, or None."""
        return next((m for m in self.members if m.name == name), None)

    def placement_targets(self, model: str) -> list[PoolMember]:
        """The up engines that can load `model`: they manage models and have it installed."""
        return [m for m in self.up_members() if m.can_manage_models and m.own_name(model)]

    def load_on(self, name: str, model: str, num_ctx: int) -> None:
        """Load `model` on the engine called `name` (placement chose it), then probe it."""
        checked_model_name(model)
        member = self.member(name)
        if member is None:
            raise EngineUnavailable(f"No engine is called {name!r}.")
        member.load(model, num_ctx)

    def _on_owner(self, model: str, manage: bool, call: Callable[[Any, str], T]) -> T:
        """Run `call` on the engine that has `model` (one that can manage it, when `manage`)."""
        checked_model_name(model)
        if self.serving_fallback() and self.fallback is not None:
            return call(self.fallback, model)
        owners = [m for m in self._candidates(model) if m.can_manage_models or not manage]
        member = owners[0] if owners else self._manager(model)
        try:
            return call(member.engine, member.own_name(model) or model)
        finally:
            if manage:
                member.probe()

    def _manager(self, model: str) -> PoolMember:
        managers = [m for m in self.up_members() if m.can_manage_models]
        if not managers:
            raise EngineUnavailable(
                f"No engine that can pull, load or delete models is up for '{model}' "
                f"({CHOOSES_MODELS})."
            )
        return managers[0]

    # -- sentences ----------------------------------------------------------------------

    def _none_up(self) -> str:
        downs = "; ".join(f"{m.name} ({m.state.detail})" for m in self.members)
        return f"No engine is up: {downs}"

    def _not_served(self, model: str) -> str:
        if not self.up_members():
            return f"Model '{model}' cannot be served now. {self._none_up()}"
        down = [m.name for m in self.members if not m.state.up]
        also = f" ({', '.join(down)} down)" if down else ""
        return f"Model '{model}' is not served by any engine that is up{also}."


def _names(members: Sequence[PoolMember]) -> str:
    return ", ".join(m.name for m in members) or "none"
