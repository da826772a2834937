"""What a chat turn yields and raises, and the checked plan a turn runs with."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from backend.auth import User
from backend.chat.fair_line_values import LineRefused, Waiting
from backend.chat.limits import Permit
from backend.chat.validation import ChatInputError, TurnSettings, installed_model
from backend.engines.base import ChatDelta, ChatMessage, ChatStats, EngineError, InstalledModel
from backend.store.database import Conversation, Message

if TYPE_CHECKING:
    from backend.admission.decision import Decision


class TurnRefused(ChatInputError):
    """Admission refused loading the model for this turn; the message carries its numbers."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message())
        self.decision = decision


class LineBusy(ChatInputError):
    """The fair line has no room for this turn: "busy: N people ahead, try again in about N s"."""

    def __init__(self, refused: LineRefused) -> None:
        super().__init__(str(refused), "busy")
        self.people_ahead = refused.people_ahead
        self.retry_after_s = refused.retry_after_s


class TurnAdmission(Protocol):
    """What the chat service asks before a turn may make the engine load a model."""

    def chat_turn_decision(self, user: User, model: str, num_ctx: int) -> Decision | None:
        """None when the model is loaded at num_ctx already, or its memory cannot be known."""
        ...


@dataclass(frozen=True)
class TurnWaiting:
    """The turn waits in the fair line: its place now (position 1 starts next)."""

    position: int
    people_ahead: int
    expected_wait_s: float

    def describe(self) -> str:
        """E.g. "2nd in line · about 8 s"."""
        return Waiting(self.position, self.people_ahead, self.expected_wait_s).describe()


@dataclass(frozen=True)
class TurnStarted:
    conversation: Conversation
    prompt: Message
    dropped_messages: int  # oldest history messages left out to fit num_ctx
    note: str = ""  # a setting changed on the way (the context capped at the model's own)


@dataclass(frozen=True)
class TurnFinished:
    reply: Message  # persisted, with status complete | stopped | error


TurnEvent = TurnWaiting | TurnStarted | ChatDelta | TurnFinished


@dataclass(frozen=True)
class TurnPlan:
    """A checked turn on its way: who, with what settings, from where, since when."""

    user: User
    settings: TurnSettings
    note: str
    source: str  # 'page' or 'api' (usage)
    model_label: str  # the metrics' model label
    arrived_s: float  # time.monotonic() when the turn arrived
    history: tuple[ChatMessage, ...] | None = None  # the whole conversation, when sent (API)
    persist: bool = True  # False: an API call not kept; only its usage is written


def engine_seconds(stats: ChatStats | None, slot_at: float) -> float:
    """The engine's own time for the reply when it said, else the time the slot was held."""
    if stats is not None and stats.total_ms:
        return stats.total_ms / 1000
    return time.monotonic() - slot_at


def within_budget(turn: TurnPlan, permit: Permit | None) -> TurnPlan:
    """Cap the reply at what is left of the user's reply tokens for today, and say so.

    A budget of a whole context or more changes nothing: no reply is longer than its context.
    """
    budget = permit.reply_budget if permit is not None else None
    options = turn.settings.options
    if budget is None or budget >= options.num_ctx:
        return turn
    if options.num_predict is not None and options.num_predict <= budget:
        return turn
    options = replace(options, num_predict=budget)
    note = f"This reply may use at most {budget:,} tokens: what is left of today's quota."
    note = f"{turn.note}\n{note}" if turn.note else note
    return replace(turn, settings=replace(turn.settings, options=options), note=note)


def admitted_settings(
    installed: Callable[[], list[InstalledModel]],
    admission: TurnAdmission,
    user: User,
    settings: TurnSettings,
) -> tuple[TurnSettings, str, bool]:
    """The settings the engine gets, or ChatInputError / TurnRefused before any write.

    An unreachable engine is not refused here: the turn then fails at the engine and is
    saved as an error reply, like any engine failure. The flag: the engine listed the model.
    """
    try:
        names = [m.name for m in installed()]
    except EngineError:
        names = None
    if names is not None:
        settings = replace(settings, model=installed_model(settings.model, names))
    asked = settings.options.num_ctx
    decision = admission.chat_turn_decision(user, settings.model, asked)
    if decision is None:
        return settings, "", names is not None
    if not decision.admitted:
        raise TurnRefused(decision)
    if decision.num_ctx >= asked:
        return settings, "", names is not None
    options = replace(settings.options, num_ctx=decision.num_ctx)
    if options.num_predict is not None:
        options = replace(options, num_predict=min(options.num_predict, decision.num_ctx))
    note = (
        f"{settings.model} was trained on a context of {decision.num_ctx} tokens: "
        f"this reply uses {decision.num_ctx}, not {asked}."
    )
    return replace(settings, options=options), note, names is not None
