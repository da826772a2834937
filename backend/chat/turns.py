"""One chat turn: checks, limits, the fair line, the engine, and the rows it leaves behind.

A turn goes: validate the inputs -> admission for the model -> the user's limits and quotas
(backend.chat.limits) -> join the fair line (backend.chat.fair_line) and wait there, yielding
TurnWaiting as the place in line changes -> once a slot is granted, commit the question (and,
for regenerate or edit, remove what it replaces) -> stream the engine, retrying a busy engine
(Ollama's 503) with backoff -> free the slot -> write the reply once, with its status (complete
/ stopped / error), its stats and the day's usage, in one transaction.

What is stored when a turn does not get that far: nothing. A refusal (bad input, admission,
a limit, a full line) and a Stop or a closed page while waiting leave the database exactly as
it was: the question is committed only when the turn holds a slot, so no question is ever left
without its reply row, and a regenerate or edit replaces nothing until then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from backend.auth import User
from backend.chat.fair_line import FairLine
from backend.chat.fair_line_values import LineRefused, Ticket
from backend.chat.limits import LimitReached, Permit, TurnLimits, utc_now
from backend.chat.metrics import UNVERIFIED_MODEL, ChatMetrics
from backend.chat.prompting import (
    coalesce_deltas,
    estimate_tokens,
    fit_history,
    make_title,
)
from backend.chat.shutdown import ShutdownGate
from backend.chat.turn_records import commit_sent_history, conversation_for, save_reply
from backend.chat.turn_values import (
    LineBusy,
    TurnAdmission,
    TurnEvent,
    TurnFinished,
    TurnPlan,
    TurnRefused,
    TurnStarted,
    TurnWaiting,
    admitted_settings,
    engine_seconds,
    within_budget,
)
from backend.chat.validation import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    TurnSettings,
    checked_settings,
    conversation_ref,
    message_text,
    sent_history,
    stored_settings,
)
from backend.engines.base import ChatDelta, ChatMessage, ChatStats, Engine, EngineBusy, EngineError
from backend.engines.listings import ModelListings
from backend.engines.retry import BusyRetry, retry_busy_stream
from backend.settings import DEFAULT_MAX_WAITING
from backend.store.database import Conversation, Message, Store

__all__ = [  # the chat defaults, checks and prompt helpers, for callers of the chat service
    "DEFAULT_NUM_CTX",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_TEMPERATURE",
    "ChatInputError",
    "LimitReached",
    "LineBusy",
    "TurnEvent",
    "TurnFinished",
    "TurnRefused",
    "TurnSettings",
    "TurnStarted",
    "TurnWaiting",
    "coalesce_deltas",
    "estimate_tokens",
    "fit_history",
    "make_title",
    "stored_settings",
]


Commit = Callable[[], tuple[Conversation, Message]]


class ChatService:
    """Runs turns for the acting user; the engine is looked up per turn (it may be swapped).

    Every turn is checked before anything is written or the engine sees it: the inputs by
    chat_validation's rules, the model against the engine's list, the load it may cause by
    admission, the user's limits, and room in the line, whichever way the turn arrived (Chat
    tab, /chat, a script).
    """

    def __init__(
        self,
        store: Store,
        engine: Callable[[], Engine],
        admission: TurnAdmission,
        *,
        line: FairLine | None = None,
        limits: TurnLimits | None = None,
        metrics: ChatMetrics | None = None,
        busy_retry: BusyRetry = BusyRetry(),  # noqa: B008 - a frozen value
        clock: Callable[[], datetime] = utc_now,
        shutdown: ShutdownGate | None = None,
        listings: ModelListings | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._listings = listings if listings is not None else ModelListings(engine)
        self._admission = admission
        self._line = line or FairLine(1, 1, DEFAULT_MAX_WAITING)
        self._limits = limits
        self._metrics = metrics or ChatMetrics(CollectorRegistry())
        self._retry = busy_retry
        self._clock = clock
        self._shutdown = shutdown if shutdown is not None else ShutdownGate()

    @property
    def line(self) -> FairLine:
        return self._line

    def send(
        self,
        user: User,
        conversation_id: int | None,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
        *,
        source: str = "page",
    ) -> Iterator[TurnEvent]:
        """Wait for a slot, commit the question, stream the reply; the reply is always saved."""
        text = message_text(text)
        settings = checked_settings(settings)
        conversation_id = conversation_ref(conversation_id)
        if conversation_id is not None:
            self._store.get_conversation(user.id, conversation_id)  # the user's own, or refused
        turn = self._prepared(user, settings, source)

        def commit() -> tuple[Conversation, Message]:
            return self._ask(turn, conversation_id, text)

        yield from self._run(turn, commit, cancel)

    def regenerate(
        self,
        user: User,
        conversation_id: int,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
        *,
        source: str = "page",
    ) -> Iterator[TurnEvent]:
        """Answer the last question again; its old reply is dropped once the slot is granted."""
        settings = checked_settings(settings)
        conversation_id = _existing(conversation_id)
        self._last_question(user, conversation_id, "answer again")  # refused before the line
        turn = self._prepared(user, settings, source)

        def commit() -> tuple[Conversation, Message]:
            question, later = self._last_question(user, conversation_id, "answer again")
            if later:
                self._store.delete_messages_from(user.id, conversation_id, later[0].id)
            return conversation_for(self._store, user, conversation_id, "", turn.settings), question

        yield from self._run(turn, commit, cancel)

    def edit_last(
        self,
        user: User,
        conversation_id: int,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
        *,
        source: str = "page",
    ) -> Iterator[TurnEvent]:
        """Replace the last question (and its reply) with new text, once the slot is granted."""
        text = message_text(text, "The edited question")
        settings = checked_settings(settings)
        conversation_id = _existing(conversation_id)
        self._last_question(user, conversation_id, "edit")
        turn = self._prepared(user, settings, source)

        def commit() -> tuple[Conversation, Message]:
            question, _ = self._last_question(user, conversation_id, "edit")
            self._store.delete_messages_from(user.id, conversation_id, question.id)
            return self._ask(turn, conversation_id, text)

        yield from self._run(turn, commit, cancel)

    def exchange(
        self,
        user: User,
        messages: object,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
        *,
        persist: bool = False,
    ) -> Iterator[TurnEvent]:
        """A whole conversation sent at once (the OpenAI API): same checks, line and usage as
        the page. Kept as a new conversation only when `persist`; else only usage is written."""
        system, history = sent_history(messages)
        settings = replace(checked_settings(settings), system_prompt=system)
        turn = replace(self._prepared(user, settings, "api"), history=history, persist=persist)
        yield from self._run(turn, lambda: commit_sent_history(self._store, turn), cancel)

    # -- before the engine -----------------------------------------------------------------

    def _prepared(self, user: User, settings: TurnSettings, source: str) -> TurnPlan:
        if source not in ("page", "api"):
            raise ValueError(f"source must be 'page' or 'api', got {source!r}")
        self._shutdown.check()  # no new turns once Hearth is shutting down
        arrived = time.monotonic()
        settings, note, verified = admitted_settings(
            self._listings.installed, self._admission, user, settings
        )
        label = settings.model if verified else UNVERIFIED_MODEL
        return TurnPlan(user, settings, note, source, label, arrived)

    def _run(
        self, turn: TurnPlan, commit: Commit, cancel: threading.Event | None
    ) -> Iterator[TurnEvent]:
        """Limits, then the line; commit and reply only once a slot is held."""
        permit = self._permit(turn)
        try:
            turn = within_budget(turn, permit)
            try:
                ticket = self._join(turn)
            except LineBusy:
                if permit is not None:  # it never ran: not one of this minute's requests
                    permit.release(refund=True)
                raise
            with ticket:
                for place in self._line.wait(ticket, cancel):
                    yield TurnWaiting(place.position, place.people_ahead, place.expected_wait_s)
                if cancel is not None and cancel.is_set():  # Stop as the slot came: give it back
                    ticket.release(record=False)
                if not ticket.has_slot:  # Stop (or the page went away) while waiting
                    self._metrics.ended(turn.model_label, "left")
                    return
                conversation, prompt = commit()
                yield from self._reply(turn, conversation, prompt, cancel, ticket)
        finally:
            if permit is not None:
                permit.release()

    def _permit(self, turn: TurnPlan) -> Permit | None:
        if self._limits is None:
            return None
        try:
            return self._limits.admit(turn.user)
        except LimitReached:
            self._metrics.ended(turn.model_label, "limited")
            raise

    def _join(self, turn: TurnPlan) -> Ticket:
        try:
            return self._line.join(turn.user.name)
        except LineRefused as refused:
            self._metrics.ended(turn.model_label, "busy")
            raise LineBusy(refused) from refused

    def _ask(
        self, turn: TurnPlan, conversation_id: int | None, text: str
    ) -> tuple[Conversation, Message]:
        conversation = conversation_for(self._store, turn.user, conversation_id, text,
                                        turn.settings)  # fmt: skip
        prompt = self._store.add_message(
            turn.user.id, conversation.id, role="user", content=text, model=turn.settings.model
        )
        return conversation, prompt

    def _last_question(
        self, user: User, conversation_id: int, action: str
    ) -> tuple[Message, list[Message]]:
        """The conversation's last user message and the messages after it."""
        messages = self._store.messages(user.id, conversation_id)
        for index in range(len(messages) - 1, -1, -1):
            if messages[index].role == "user":
                return messages[index], messages[index + 1 :]
        raise ChatInputError(f"There is no question to {action}.")

    # -- the engine ------------------------------------------------------------------------

    def _reply(
        self,
        turn: TurnPlan,
        conversation: Conversation,
        prompt: Message,
        cancel: threading.Event | None,
        ticket: Ticket,
    ) -> Iterator[TurnEvent]:
        messages, dropped = self._prompt(turn, conversation, prompt)
        yield TurnStarted(conversation, prompt, dropped, turn.note)
        parts: list[str] = []
        stats: ChatStats | None = None
        status, error = "stopped", ""
        slot_at = time.monotonic()
        cancel = cancel if cancel is not None else threading.Event()
        stream = self._engine_stream(turn.settings, messages, cancel)
        self._shutdown.track(cancel)  # a shutdown cuts the reply through its cancel Event
        try:
            for item in stream:
                if isinstance(item, ChatStats):
                    stats = item
                    continue
                if not parts:
                    self._metrics.first_token(time.monotonic() - turn.arrived_s)
                parts.append(item.text)
                yield item
            cancelled = stats is not None and stats.done_reason == "cancelled"
            status = "stopped" if cancelled else "complete"
        except EngineError as exc:
            stopped = isinstance(exc, EngineBusy) and cancel is not None and cancel.is_set()
            status, error = ("stopped", "") if stopped else ("error", str(exc))
        finally:
            # Runs on normal end, on engine errors and when the consumer closes us (Stop):
            # close the engine's stream first so it stops generating, then free the slot.
            stream.close()
            status, error = self._shutdown.outcome(cancel, status, error)
            engine_s = engine_seconds(stats, slot_at)
            ticket.release(engine_s=engine_s, record=status == "complete")
            reply = self._save_reply(turn, conversation, "".join(parts), status, error, stats,
                                     engine_s)  # fmt: skip
            self._shutdown.untrack(cancel)  # saved: a drain need not wait for it any more
        yield TurnFinished(reply)

    def _prompt(
        self, turn: TurnPlan, conversation: Conversation, prompt: Message
    ) -> tuple[list[ChatMessage], int]:
        history = list(turn.history) if turn.history is not None else [
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]
            for m in self._store.messages(turn.user.id, conversation.id)
            if m.role in ("user", "assistant") and m.id <= prompt.id
        ]  # fmt: skip
        options = turn.settings.options
        reserve = options.num_predict or max(options.num_ctx // 4, 128)
        return fit_history(turn.settings.system_prompt, history, options.num_ctx, reserve)

    def _engine_stream(
        self, settings: TurnSettings, messages: list[ChatMessage], cancel: threading.Event | None
    ) -> Generator[ChatDelta | ChatStats, None, None]:
        """The engine's reply; a busy engine is asked again with backoff (Stop cuts it short)."""

        def start() -> Iterator[ChatDelta | ChatStats]:
            return self._engine().chat(settings.model, messages, settings.options, cancel)

        return retry_busy_stream(
            start,
            self._retry.attempts,
            self._retry.base_delay_s,
            max_delay_s=self._retry.max_delay_s,
            sleep=cancel.wait if cancel is not None else time.sleep,
            cancel=cancel,
        )

    def _save_reply(
        self,
        turn: TurnPlan,
        conversation: Conversation,
        content: str,
        status: str,
        error: str,
        stats: ChatStats | None,
        engine_s: float,
    ) -> Message:
        """The reply row and the day's usage, in one transaction; then the metrics."""
        day = self._clock().astimezone(UTC).date().isoformat()
        reply = save_reply(self._store, day, turn, conversation, (content, status, error), stats,
                           engine_s)  # fmt: skip
        self._metrics.ended(turn.model_label, status)
        self._metrics.add_tokens(turn.model_label, (stats.prompt_tokens or 0) if stats else 0,
                                 (stats.reply_tokens or 0) if stats else 0)  # fmt: skip
        return reply


def _existing(conversation_id: object) -> int:
    found = conversation_ref(conversation_id)
    if found is None:
        raise ChatInputError("Open a chat first.")
    return found
