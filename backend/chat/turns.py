"""One chat turn: persist the prompt, stream the engine, persist the reply with its stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from backend.auth import User
from backend.chat.shutdown import ShutdownGate
from backend.chat.validation import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    TurnSettings,
    checked_settings,
    conversation_ref,
    installed_model,
    message_text,
    options_dict,
    stored_settings,
)
from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatStats,
    Engine,
    EngineError,
)
from backend.store.database import Conversation, Message, Store

if TYPE_CHECKING:
    from backend.admission import Decision

__all__ = [  # the chat defaults and checks, for callers of the chat service
    "DEFAULT_NUM_CTX",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_TEMPERATURE",
    "ChatInputError",
    "TurnSettings",
    "stored_settings",
]

TITLE_MAX_CHARS = 60
# Without the engine's tokenizer we budget ~3.5 characters a token (English prose averages ~4;
# code and other languages less), plus a few tokens of chat-template framing per message.
CHARS_PER_TOKEN = 3.5
TEMPLATE_TOKENS_PER_MESSAGE = 6


class TurnRefused(ChatInputError):
    """Admission refused loading the model for this turn; the message carries its numbers."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message())
        self.decision = decision


class TurnAdmission(Protocol):
    """What the chat service asks before a turn may make the engine load a model."""

    def chat_turn_decision(self, user: User, model: str, num_ctx: int) -> Decision | None:
        """None when the model is loaded at num_ctx already, or its memory cannot be known."""
        ...


@dataclass(frozen=True)
class TurnStarted:
    conversation: Conversation
    prompt: Message
    dropped_messages: int  # oldest history messages left out to fit num_ctx
    note: str = ""  # a setting changed on the way (the context capped at the model's own)


@dataclass(frozen=True)
class TurnFinished:
    reply: Message  # persisted, with status complete | stopped | error | interrupted


TurnEvent = TurnStarted | ChatDelta | TurnFinished


def make_title(text: str) -> str:
    """A conversation title from the first question: first line, cut at a word boundary."""
    line = " ".join(text.strip().split("\n", 1)[0].split())
    if len(line) <= TITLE_MAX_CHARS:
        return line or "New chat"
    cut = line[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + TEMPLATE_TOKENS_PER_MESSAGE


def fit_history(
    system_prompt: str, history: Sequence[ChatMessage], num_ctx: int, reserve_tokens: int
) -> tuple[list[ChatMessage], int]:
    """Keep the newest messages that fit num_ctx beside the system prompt and the reply budget.

    Drops whole turns from the oldest end; the newest message (the question) is always kept.
    Returns the prompt messages and how many history messages were left out.
    """
    budget = num_ctx - reserve_tokens - (estimate_tokens(system_prompt) if system_prompt else 0)
    kept: list[ChatMessage] = []
    for message in reversed(history):
        cost = estimate_tokens(message.content)
        if kept and cost > budget:
            break
        kept.append(message)
        budget -= cost
    kept.reverse()
    # Never start the prompt on an assistant reply whose question was dropped.
    while len(kept) > 1 and kept[0].role == "assistant":
        kept.pop(0)
    system = [ChatMessage("system", system_prompt)] if system_prompt else []
    return system + kept, len(history) - len(kept)


class ChatService:
    """Runs turns for the acting user; the engine is looked up per turn (it may be swapped).

    Every turn is checked before anything is written or the engine sees it: the inputs by
    chat_validation's rules, the model against the engine's list, and the load it may cause
    by admission, whichever way the turn arrived (Chat tab, /chat, a script).
    """

    def __init__(
        self,
        store: Store,
        engine: Callable[[], Engine],
        admission: TurnAdmission,
        *,
        shutdown: ShutdownGate | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._admission = admission
        self._shutdown = shutdown if shutdown is not None else ShutdownGate()

    def send(
        self,
        user: User,
        conversation_id: int | None,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        """Persist the question, then stream the reply; the reply is persisted however it ends."""
        text = message_text(text)
        settings = checked_settings(settings)
        conversation_id = conversation_ref(conversation_id)
        if conversation_id is not None:
            self._store.get_conversation(user.id, conversation_id)  # the user's own, or refused
        settings, note = self._admitted(user, settings)
        yield from self._send(user, conversation_id, text, settings, cancel, note)

    def regenerate(
        self,
        user: User,
        conversation_id: int,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        """Drop the last reply and answer the last question again."""
        settings = checked_settings(settings)
        conversation_id = _existing(conversation_id)
        last_question, later = self._last_question(user, conversation_id, "answer again")
        settings, note = self._admitted(user, settings)  # before anything is deleted
        if later:
            self._store.delete_messages_from(user.id, conversation_id, later[0].id)
        conversation = self._conversation_for(user, conversation_id, "", settings)
        yield from self._reply(user, conversation, last_question, settings, cancel, note)

    def edit_last(
        self,
        user: User,
        conversation_id: int,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        """Replace the last question (and its reply) with new text and answer it."""
        text = message_text(text, "The edited question")
        settings = checked_settings(settings)
        conversation_id = _existing(conversation_id)
        last_question, _ = self._last_question(user, conversation_id, "edit")
        settings, note = self._admitted(user, settings)  # before anything is deleted
        self._store.delete_messages_from(user.id, conversation_id, last_question.id)
        yield from self._send(user, conversation_id, text, settings, cancel, note)

    def _send(
        self,
        user: User,
        conversation_id: int | None,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None,
        note: str,
    ) -> Iterator[TurnEvent]:
        conversation = self._conversation_for(user, conversation_id, text, settings)
        prompt = self._store.add_message(
            user.id, conversation.id, role="user", content=text, model=settings.model
        )
        yield from self._reply(user, conversation, prompt, settings, cancel, note)

    def _admitted(self, user: User, settings: TurnSettings) -> tuple[TurnSettings, str]:
        """The settings the engine gets, or ChatInputError / TurnRefused before any write.

        An unreachable engine is not refused here: the turn then fails at the engine and is
        saved as an error reply, like any engine failure.
        """
        self._shutdown.check()  # no new turns once Hearth is shutting down
        try:
            names = [m.name for m in self._engine().list_models()]
        except EngineError:
            names = None
        if names is not None:
            settings = replace(settings, model=installed_model(settings.model, names))
        asked = settings.options.num_ctx
        decision = self._admission.chat_turn_decision(user, settings.model, asked)
        if decision is None:
            return settings, ""
        if not decision.admitted:
            raise TurnRefused(decision)
        if decision.num_ctx >= asked:
            return settings, ""
        options = replace(settings.options, num_ctx=decision.num_ctx)
        if options.num_predict is not None:
            options = replace(options, num_predict=min(options.num_predict, decision.num_ctx))
        note = (
            f"{settings.model} was trained on a context of {decision.num_ctx} tokens: "
            f"this reply uses {decision.num_ctx}, not {asked}."
        )
        return replace(settings, options=options), note

    def _last_question(
        self, user: User, conversation_id: int, action: str
    ) -> tuple[Message, list[Message]]:
        """The conversation's last user message and the messages after it."""
        messages = self._store.messages(user.id, conversation_id)
        for index in range(len(messages) - 1, -1, -1):
            if messages[index].role == "user":
                return messages[index], messages[index + 1 :]
        raise ChatInputError(f"There is no question to {action}.")

    def _conversation_for(
        self, user: User, conversation_id: int | None, text: str, settings: TurnSettings
    ) -> Conversation:
        options = options_dict(settings.options)
        if conversation_id is None:
            return self._store.create_conversation(
                user.id,
                title=make_title(text),
                model=settings.model,
                system_prompt=settings.system_prompt,
                options=options,
            )
        return self._store.update_conversation(
            user.id,
            conversation_id,
            model=settings.model,
            system_prompt=settings.system_prompt,
            options=options,
        )

    def _reply(
        self,
        user: User,
        conversation: Conversation,
        prompt: Message,
        settings: TurnSettings,
        cancel: threading.Event | None,
        note: str = "",
    ) -> Iterator[TurnEvent]:
        history = [
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]
            for m in self._store.messages(user.id, conversation.id)
            if m.role in ("user", "assistant") and m.id <= prompt.id
        ]
        options = settings.options
        reserve = options.num_predict or max(options.num_ctx // 4, 128)
        messages, dropped = fit_history(settings.system_prompt, history, options.num_ctx, reserve)
        yield TurnStarted(conversation, prompt, dropped, note)

        parts: list[str] = []
        stats: ChatStats | None = None
        status, error = "stopped", ""
        cancel = cancel if cancel is not None else threading.Event()
        stream = self._engine().chat(settings.model, messages, options, cancel)
        self._shutdown.track(cancel)  # a shutdown cuts the reply through its cancel Event
        try:
            for item in stream:
                if isinstance(item, ChatStats):
                    stats = item
                else:
                    parts.append(item.text)
                    yield item
            status = (
                "stopped"
                if stats is not None and stats.done_reason == "cancelled"
                else ("complete")
            )
        except EngineError as exc:
            status, error = "error", str(exc)
        finally:
            # Runs on normal end, on engine errors and when the consumer closes us (Stop):
            # close the engine's stream first so it stops generating and frees the model.
            stream.close()
            status, error = self._shutdown.outcome(cancel, status, error)
            reply = self._store.add_message(
                user.id,
                conversation.id,
                role="assistant",
                content="".join(parts),
                model=settings.model,
                status=status,
                error=error,
                ttft_ms=stats.ttft_ms if stats else None,
                tokens_in=stats.prompt_tokens if stats else None,
                tokens_out=stats.reply_tokens if stats else None,
                tokens_per_s=stats.tokens_per_s if stats else None,
            )
            self._shutdown.untrack(cancel)  # saved: a drain need not wait for it any more
        yield TurnFinished(reply)


def coalesce_deltas(
    events: Iterator[TurnEvent], min_interval_s: float = 0.05
) -> Iterator[TurnEvent]:
    """Merge deltas that arrive within min_interval_s of the last one passed on.

    A UI update costs far more than a token at 100+ tok/s, and 20 updates a second read as
    smooth. The first delta always goes at once (time to first token is untouched), nothing
    is held back past the next event, and the turn's other events pass through in order.
    """
    pending = ""
    last_sent = 0.0
    for event in events:
        if not isinstance(event, ChatDelta):
            if pending:
                yield ChatDelta(pending)
                pending = ""
            yield event
            continue
        pending += event.text
        now = time.monotonic()
        if now - last_sent >= min_interval_s:
            yield ChatDelta(pending)
            pending, last_sent = "", now
    if pending:
        yield ChatDelta(pending)


def _existing(conversation_id: object) -> int:
    found = conversation_ref(conversation_id)
    if found is None:
        raise ChatInputError("Open a chat first.")
    return found
