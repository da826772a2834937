"""A chat turn as the Chat tab and the /chat API stream it, and the model picker's advice."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING

import gradio as gr

from backend.chat import (
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    TurnFinished,
    TurnSettings,
    TurnStarted,
    coalesce_deltas,
)
from backend.engines.base import ChatDelta, ChatOptions, EngineError
from ui.chat_render import reply_markdown
from ui.common import USER_ERRORS, acting_user, guarded, safe_markdown, user_error

if TYPE_CHECKING:
    from backend.services import Services

DEFAULT_NUM_CTX = 4096


def turn_settings(model_name, system, temperature, num_ctx, max_tokens) -> TurnSettings:
    options = ChatOptions(
        temperature=float(temperature),
        num_ctx=int(num_ctx),
        num_predict=int(max_tokens) if max_tokens else None,
    )
    return TurnSettings(model=model_name or "", system_prompt=system or "", options=options)


def stream_turn(services, kind, text, current, history, settings, request, cancel):
    """Yield (chatbot, textbox, conversation id, notice, send button, stop button) updates."""
    busy = (gr.Button(visible=False), gr.Button(visible=True))
    idle = (gr.Button(visible=True), gr.Button(visible=False))
    history = list(history or [])
    try:
        user = acting_user(services, request)
        if kind == "send":
            events = services.chat.send(user, current, text, settings, cancel)
        elif current is None:
            raise ChatInputError("Open a chat first.")
        elif kind == "regenerate":
            events = services.chat.regenerate(user, current, settings, cancel)
        else:
            events = services.chat.edit_last(user, current, text, settings, cancel)
        if kind == "send":
            history.append({"role": "user", "content": safe_markdown(text.strip())})
        elif kind == "regenerate":
            while history and history[-1]["role"] == "assistant":
                history.pop()
        else:
            history.append({"role": "user", "content": safe_markdown(text.strip())})
        reply = ""
        notice = ""
        history.append({"role": "assistant", "content": ""})
        for event in coalesce_deltas(events):
            if isinstance(event, TurnStarted):
                current = event.conversation.id
                if event.dropped_messages:
                    notice = (
                        f"ℹ {event.dropped_messages} older message(s) left out to fit "
                        f"the {settings.options.num_ctx}-token context."
                    )
                yield history, "", current, notice, *busy
            elif isinstance(event, ChatDelta):
                reply += event.text
                history[-1] = {"role": "assistant", "content": safe_markdown(reply)}
                yield history, "", current, notice, *busy
            elif isinstance(event, TurnFinished):
                history[-1] = {"role": "assistant", "content": reply_markdown(event.reply)}
                if event.reply.status == "error":
                    notice = f"⚠ {event.reply.error}"
                yield history, "", current, notice, *idle
    except USER_ERRORS as exc:
        gr.Warning(html.escape(str(exc)))
        yield gr.Chatbot(), gr.Textbox(), current, f"⚠ {exc}", *idle


def model_advice(services: Services, user, model: str, num_ctx: int) -> tuple[str, bool]:
    """What admission would say about chatting with this model now: (notice, refused)."""
    if not model:
        return "", False
    decision = services.models.chat_model_check(user, model, int(num_ctx))
    if decision is None or decision.verdict == "admit":
        return "", False
    lines = decision.message().split("\n")
    icon = "⛔" if decision.verdict == "refuse" else "ℹ"
    return f"{icon} " + "  \n".join(safe_markdown(line) for line in lines), (
        decision.verdict == "refuse"
    )


def register_api(services: Services) -> None:
    """The one documented API: /chat, the Chat tab's turn for scripts (gradio_client)."""

    def chat(
        message: str,
        model: str,
        conversation_id: int | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        temperature: float = DEFAULT_TEMPERATURE,
        num_ctx: int = DEFAULT_NUM_CTX,
        max_tokens: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[str]:
        """Send a message as the signed-in user; streams the reply so far, like the Chat tab.

        conversation_id continues a saved conversation; empty starts a new one.
        """
        try:
            user = acting_user(services, request)
            settings = turn_settings(model, system_prompt, temperature, num_ctx, max_tokens)
            reply = ""
            events = services.chat.send(user, conversation_id, message, settings)
            for event in coalesce_deltas(events):
                if isinstance(event, ChatDelta):
                    reply += event.text
                    yield reply
                elif isinstance(event, TurnFinished) and event.reply.status == "error":
                    raise EngineError(event.reply.error)
        except USER_ERRORS as exc:
            raise user_error(exc) from exc

    gr.api(guarded(chat), api_name="chat", concurrency_id="engine", concurrency_limit=4)
