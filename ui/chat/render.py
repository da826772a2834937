"""Turn stored messages and search hits into what the Chat tab's components show."""

from __future__ import annotations

import html
from datetime import datetime

from backend.chat.validation import installed_model
from backend.services import Conversation, Message, SearchHit
from backend.units import format_ms
from ui.common import inline_markdown, safe_markdown

# Signs every desktop's fonts have (DejaVu, Arial, Segoe UI), as the notices' ℹ ⚠ ✖ ◷: the
# emoji ⏹ ⏸ ⏳ ⛔ showed as empty boxes in a browser without an emoji font.
STATUS_MARKERS = {"stopped": "■ Stopped", "error": "⚠ Failed", "interrupted": "‖ Interrupted"}


def stats_line(message: Message) -> str:
    parts = []
    if message.ttft_ms is not None:
        parts.append(f"{format_ms(message.ttft_ms)} to first token")
    if message.tokens_per_s is not None:
        parts.append(f"{message.tokens_per_s:.1f} tok/s")
    if message.tokens_in is not None or message.tokens_out is not None:
        parts.append(f"{message.tokens_in or 0} prompt · {message.tokens_out or 0} reply tokens")
    return " · ".join(parts)


def reply_markdown(message: Message) -> str:
    """A reply's text with its status and the engine's stats underneath."""
    text = safe_markdown(message.content)
    footer = []
    if message.status in STATUS_MARKERS:
        marker = STATUS_MARKERS[message.status]
        if message.error:
            marker += f": {inline_markdown(message.error)}"
        footer.append(f"**{marker}**")
    if stats := stats_line(message):
        footer.append(stats)
    if footer:
        text += '\n\n<span class="reply-stats">' + " · ".join(footer) + "</span>"
    return text


def chat_history(messages: list[Message]) -> list[dict[str, str]]:
    history = []
    for message in messages:
        if message.role == "user":
            history.append({"role": "user", "content": safe_markdown(message.content)})
        elif message.role == "assistant":
            history.append({"role": "assistant", "content": reply_markdown(message)})
    return history


def short_date(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.strftime("%d %b %Y, %H:%M")


def conversation_card(conversation: Conversation, current_id: int | None) -> str:
    selected = " selected" if conversation.id == current_id else ""
    return (
        f'<div class="conv-card{selected}"><div class="conv-title">'
        f"{html.escape(conversation.title)}</div>"
        f'<div class="conv-meta">{short_date(conversation.updated_at)}'
        f" · {conversation.message_count} messages · {html.escape(conversation.model)}</div></div>"
    )


def search_card(hit: SearchHit) -> str:
    snippet = html.escape(hit.snippet).replace("«", "<mark>").replace("»", "</mark>")
    return (
        f'<div class="conv-card"><div class="conv-title">{html.escape(hit.title)}</div>'
        f'<div class="conv-snippet">{html.escape(hit.role)}: {snippet}</div>'
        f'<div class="conv-meta">{short_date(hit.created_at)}</div></div>'
    )


def model_choice(stored: str, installed: list[str]) -> tuple[str | None, str]:
    """The model picker's value for a chat that used `stored`, and a notice if it is not here.

    A Dropdown is only ever given one of its choices: for any other value Gradio raises "not
    in the list of choices" on the next event, in a toast that renders the value as HTML.
    """
    if not stored:
        return None, ""
    try:
        return installed_model(stored, installed), ""
    except ValueError:
        pass
    return None, (
        f"ℹ This chat used the model {inline_markdown(stored)}, which is not installed here;"
        " pick one to continue."
    )
