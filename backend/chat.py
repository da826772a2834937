"""One chat turn: persist the prompt, stream the engine, persist the reply with its stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from backend.accounts import User
from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    Engine,
    EngineError,
)
from backend.store import Conversation, Message, Store

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# Low enough that small models (the bundled 135M one) stay on topic: SmolLM2 answered
# "capital of France?" with Paris 7 times in 8 seeds at 0.3, 4 in 8 at 0.7.
DEFAULT_TEMPERATURE = 0.3
TITLE_MAX_CHARS = 60
# Without the engine's tokenizer we budget ~3.5 characters a token (English prose averages ~4;
# code and other languages less), plus a few tokens of chat-template framing per message.
CHARS_PER_TOKEN = 3.5
TEMPLATE_TOKENS_PER_MESSAGE = 6


class ChatInputError(ValueError):
    """The turn cannot start (empty message, no model chosen, nothing to regenerate)."""


@dataclass(frozen=True)
class TurnSettings:
    model: str
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    options: ChatOptions = field(default_factory=ChatOptions)


@dataclass(frozen=True)
class TurnStarted:
    conversation: Conversation
    prompt: Message
    dropped_messages: int  # oldest history messages left out to fit num_ctx


@dataclass(frozen=True)
class TurnFinished:
    reply: Message  # persisted, with status complete | stopped | error


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
    """Runs turns for the acting user; the engine is looked up per turn (it may be swapped)."""

    def __init__(self, store: Store, engine: Callable[[], Engine]) -> None:
        self._store = store
        self._engine = engine

    def send(
        self,
        user: User,
        conversation_id: int | None,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        """Persist the question, then stream the reply; the reply is persisted however it ends."""
        text = text.strip()
        if not text:
            raise ChatInputError("Type a message first.")
        _check_model(settings)
        conversation = self._conversation_for(user, conversation_id, text, settings)
        prompt = self._store.add_message(
            user.id, conversation.id, role="user", content=text, model=settings.model
        )
        yield from self._reply(user, conversation, prompt, settings, cancel)

    def regenerate(
        self,
        user: User,
        conversation_id: int,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        """Drop the last reply and answer the last question again."""
        _check_model(settings)
        last_question, later = self._last_question(user, conversation_id, "answer again")
        if later:
            self._store.delete_messages_from(user.id, conversation_id, later[0].id)
        conversation = self._conversation_for(user, conversation_id, "", settings)
        yield from self._reply(user, conversation, last_question, settings, cancel)

    def edit_last(
        self,
        user: User,
        conversation_id: int,
        text: str,
        settings: TurnSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[TurnEvent]:
        """Replace the last question (and its reply) with new text and answer it."""
        if not text.strip():
            raise ChatInputError("The edited question is empty.")
        _check_model(settings)  # before anything is deleted
        last_question, _ = self._last_question(user, conversation_id, "edit")
        self._store.delete_messages_from(user.id, conversation_id, last_question.id)
        yield from self.send(user, conversation_id, text, settings, cancel)

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
        options = _options_dict(settings.options)
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
    ) -> Iterator[TurnEvent]:
        history = [
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]
            for m in self._store.messages(user.id, conversation.id)
            if m.role in ("user", "assistant") and m.id <= prompt.id
        ]
        options = settings.options
        reserve = options.num_predict or max(options.num_ctx // 4, 128)
        messages, dropped = fit_history(settings.system_prompt, history, options.num_ctx, reserve)
        yield TurnStarted(conversation, prompt, dropped)

        parts: list[str] = []
        stats: ChatStats | None = None
        status, error = "stopped", ""
        stream = self._engine().chat(settings.model, messages, options, cancel)
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


def _check_model(settings: TurnSettings) -> None:
    if not settings.model:
        raise ChatInputError("Choose a model first.")


def _options_dict(options: ChatOptions) -> dict[str, object]:
    return {k: v for k, v in vars(options).items() if v is not None}


def options_from_dict(values: dict[str, object] | None) -> ChatOptions:
    """ChatOptions from a stored dict, ignoring keys this version does not know."""
    known = set(ChatOptions.__dataclass_fields__)
    return ChatOptions(**{k: v for k, v in (values or {}).items() if k in known})  # type: ignore[arg-type]
