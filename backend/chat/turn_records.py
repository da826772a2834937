"""The rows a turn leaves: its conversation, its question and reply, the day's usage.

A turn that is not kept (an API call without `"store": true`) writes only its usage; the
Conversation and Message values it yields then have id 0 and exist nowhere else.
"""

from __future__ import annotations

from backend.auth import User
from backend.chat.prompting import make_title
from backend.chat.turn_values import TurnPlan
from backend.chat.validation import TurnSettings, options_dict
from backend.engines.base import ChatStats
from backend.store.database import Conversation, Message, Store, UsageEntry
from backend.store.values import now_iso

UNSAVED_ID = 0  # the id of a conversation or message that was not stored


def conversation_for(
    store: Store, user: User, conversation_id: int | None, text: str, settings: TurnSettings
) -> Conversation:
    """A new conversation titled after `text`, or the given one with these settings."""
    options = options_dict(settings.options)
    if conversation_id is None:
        return store.create_conversation(
            user.id,
            title=make_title(text),
            model=settings.model,
            system_prompt=settings.system_prompt,
            options=options,
        )
    return store.update_conversation(
        user.id,
        conversation_id,
        model=settings.model,
        system_prompt=settings.system_prompt,
        options=options,
    )


def commit_sent_history(store: Store, turn: TurnPlan) -> tuple[Conversation, Message]:
    """The conversation an API client sent, kept as a new conversation when it asked to be;
    else unsaved values. Returns the conversation and its question (the last message)."""
    history = turn.history or ()
    question = history[-1]
    if not turn.persist:
        now = now_iso()
        unsaved = Conversation(UNSAVED_ID, turn.user.id, make_title(question.content),
                               turn.settings.model, turn.settings.system_prompt,
                               options_dict(turn.settings.options), now, now)  # fmt: skip
        question_row = Message(UNSAVED_ID, UNSAVED_ID, question.role, question.content,
                               turn.settings.model, now)  # fmt: skip
        return unsaved, question_row
    conversation = conversation_for(store, turn.user, None, question.content, turn.settings)
    prompt: Message | None = None
    for message in history:
        prompt = store.add_message(turn.user.id, conversation.id, role=message.role,
                                   content=message.content, model=turn.settings.model)  # fmt: skip
    assert prompt is not None
    return conversation, prompt


def save_reply(
    store: Store,
    day: str,
    turn: TurnPlan,
    conversation: Conversation,
    reply: tuple[str, str, str],
    stats: ChatStats | None,
    engine_s: float,
) -> Message:
    """The reply row (content, status, error) and the day's usage in one transaction; a turn
    that is not kept records the usage alone."""
    content, status, error = reply
    prompt_tokens = (stats.prompt_tokens or 0) if stats else 0
    reply_tokens = (stats.reply_tokens or 0) if stats else 0
    usage = UsageEntry(day, turn.settings.model, turn.source, prompt_tokens, reply_tokens,
                       engine_s * 1000, status == "error", status == "stopped")  # fmt: skip
    ttft_ms, tokens_in, tokens_out, tokens_per_s = (
        (stats.ttft_ms, stats.prompt_tokens, stats.reply_tokens, stats.tokens_per_s)
        if stats
        else (None, None, None, None)
    )
    if not turn.persist:
        store.record_usage(turn.user.id, usage)
        return Message(UNSAVED_ID, UNSAVED_ID, "assistant", content, turn.settings.model,
                       now_iso(), status, error, ttft_ms, tokens_in, tokens_out,
                       tokens_per_s)  # fmt: skip
    return store.add_message(
        turn.user.id,
        conversation.id,
        role="assistant",
        content=content,
        model=turn.settings.model,
        status=status,
        error=error,
        ttft_ms=ttft_ms,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_per_s=tokens_per_s,
        usage=usage,
    )
