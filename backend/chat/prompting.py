"""Building a turn's prompt: titles, the token estimate, fitting history, merging deltas."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from backend.engines.base import ChatDelta, ChatMessage

TITLE_MAX_CHARS = 60
# Without the engine's tokenizer we budget ~3.5 characters a token (English prose averages ~4;
# code and other languages less), plus a few tokens of chat-template framing per message.
CHARS_PER_TOKEN = 3.5
TEMPLATE_TOKENS_PER_MESSAGE = 6

E = TypeVar("E")


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


def coalesce_deltas(
    events: Iterator[E | ChatDelta], min_interval_s: float = 0.05
) -> Iterator[E | ChatDelta]:
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
