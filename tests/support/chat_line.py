"""A chat service in front of a ScriptedEngine, with its fair line, limits, metrics and clock,
and turns run on their own threads the way Gradio's workers run them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from backend.auth import UserAdmin
from backend.chat.fair_line import FairLine
from backend.chat.limits import TurnLimits
from backend.chat.metrics import ChatMetrics
from backend.chat.turns import ChatService, TurnEvent, TurnFinished, TurnStarted, TurnWaiting
from backend.engines.retry import BusyRetry
from backend.store.database import Store
from tests.support.chat_service import model_service
from tests.support.fakes import ScriptedEngine

DEADLINE_S = 30


class FakeClock:
    """A wall clock the test moves by hand (UTC)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class ChatRig:
    store: Store
    engine: ScriptedEngine
    line: FairLine
    limits: TurnLimits
    registry: CollectorRegistry
    metrics: ChatMetrics
    clock: FakeClock
    chat: ChatService = field(init=False)

    def __post_init__(self) -> None:
        self.chat = ChatService(self.store, lambda: self.engine,
                                model_service(self.store, self.engine, self.store.path.parent).chat,
                                line=self.line, limits=self.limits, metrics=self.metrics,
                                busy_retry=BusyRetry(3, 0.01, 0.02), clock=self.clock)  # fmt: skip

    def wait_until(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; line: {self.line.stats()}")
            time.sleep(0.01)

    def wait_for_waiting(self, count: int) -> None:
        self.wait_until(lambda: self.line.stats().waiting == count, f"{count} waiting")


def chat_rig(store: Store, *, slots: int = 1, per_user: int = 1, max_waiting: int = 8,
             now: datetime | None = None) -> ChatRig:  # fmt: skip
    """The gate starts open: close it (engine.gate.clear()) to hold replies before a word."""
    clock = FakeClock(now or datetime(2025, 3, 14, 9, 0, tzinfo=UTC))
    registry = CollectorRegistry()
    metrics = ChatMetrics(registry)
    line = FairLine(slots, per_user, max_waiting, on_wait=metrics.observe_wait)
    metrics.watch(line.stats)
    engine = ScriptedEngine(gate=threading.Event())
    engine.gate.set()
    limits = TurnLimits(store, UserAdmin(store), clock)
    return ChatRig(store, engine, line, limits, registry, metrics, clock)


class Turn(threading.Thread):
    """One turn consumed on its own thread; its events, and the error it raised if any."""

    def __init__(self, events: Callable[[], Iterator[TurnEvent]], cancel: threading.Event) -> None:
        super().__init__(daemon=True)
        self._events = events
        self.cancel = cancel
        self.events: list[TurnEvent] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for event in self._events():
                self.events.append(event)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> Turn:
        self.join(DEADLINE_S)
        assert not self.is_alive(), "the turn never ended"
        return self

    @property
    def waits(self) -> list[TurnWaiting]:
        return [e for e in self.events if isinstance(e, TurnWaiting)]

    @property
    def started(self) -> bool:
        return any(isinstance(e, TurnStarted) for e in self.events)

    @property
    def reply(self):
        finished = [e for e in self.events if isinstance(e, TurnFinished)]
        return finished[-1].reply if finished else None


def start_turn(rig: ChatRig, user, text: str, settings, **kwargs) -> Turn:
    cancel = threading.Event()
    turn = Turn(lambda: rig.chat.send(user, None, text, settings, cancel, **kwargs), cancel)
    turn.start()
    return turn
