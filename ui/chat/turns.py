"""A chat turn as the Chat tab and the /chat API stream it, and the model picker's advice."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING

import gradio as gr

from backend.chat.turns import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    LimitReached,
    LineBusy,
    TurnFinished,
    TurnRefused,
    TurnStarted,
    TurnWaiting,
    coalesce_deltas,
)
from backend.chat.validation import (
    MAX_NUM_CTX,
    MIN_NUM_CTX,
    NUM_CTX,
    message_text,
    model_name,
    parse_int,
    turn_settings,
)
from backend.services import ChatDelta, EngineError
from ui.chat.render import reply_markdown
from ui.common import USER_ERRORS, acting_user, guarded, safe_markdown, user_error

if TYPE_CHECKING:
    from backend.services import Services


def notice_lines(icon: str, text: str) -> str:
    """A notice for the chat's Markdown line: each line of text escaped, kept on its own line."""
    return f"{icon} " + "  \n".join(safe_markdown(line) for line in text.split("\n"))


LEFT_LINE = "You left the line before the reply started: nothing was saved."


def stream_turn(services, kind, text, current, history, raw_settings, request, cancel, sidebar):
    """Yield (chatbot, textbox, conversation id, notice, *sidebar).

    raw_settings are the form's (model, system prompt, temperature, num_ctx, max tokens) as
    sent: checked here, inside the handler's error net, like everything else the turn takes.
    While the turn waits in the fair line the notice shows its place ("2nd in line · about
    8 s"); Stop there leaves the line, nothing is saved, and the question goes back in the box.
    Send and Stop swap on the page itself (chat_keys.js), not by these updates.
    sidebar(conversation id) is the page of chats to show when the reply ends (a new chat's
    row, a changed count and order); a turn that saved nothing leaves the sidebar as it was.
    """
    history = list(history) if isinstance(history, list) else []
    shown = list(history)  # what the chat showed before this turn
    view: _TurnView | None = None
    try:
        user = acting_user(services, request)
        settings = turn_settings(*raw_settings)
        events, text = _turn_events(services, kind, user, text, current, settings, cancel)
        if kind == "regenerate":
            while history and _role(history[-1]) == "assistant":
                history.pop()
        else:
            history.append({"role": "user", "content": safe_markdown(text)})
        view = _TurnView(history, current, settings.options.num_ctx)
        for event in coalesce_deltas(events):
            update = view.update(event)
            ended = isinstance(event, TurnFinished)
            yield *update, *(sidebar(view.current) if ended else SIDEBAR_KEPT)
        if not view.started:  # Stop while waiting: the line was left, nothing stored
            box = text if kind != "regenerate" else gr.skip()
            yield shown, box, current, notice_lines("ℹ", LEFT_LINE), *SIDEBAR_KEPT
    except TurnRefused as exc:  # say so now rather than fail in the middle of the reply
        gr.Warning("This model cannot be loaded at this context length now.")
        yield _refused(current, notice_lines("✖", str(exc)))
    except (LineBusy, LimitReached) as exc:
        gr.Warning(html.escape(str(exc)))
        yield _refused(current, notice_lines("◷", str(exc)))
    except USER_ERRORS as exc:
        gr.Warning(html.escape(str(exc)))
        yield _refused(current, notice_lines("⚠", str(exc)))


SIDEBAR_KEPT = (gr.skip(),) * 4  # the sidebar's rows, their ids, page number and label


def _refused(current: int | None, notice: str) -> tuple:
    """Only the notice changes (the question stays in the box). A busy line refuses many
    turns at once: each costs no rebuild."""
    return gr.skip(), gr.skip(), current, notice, *SIDEBAR_KEPT


def _turn_events(services, kind, user, text, current, settings, cancel):
    """The chat service's events for this kind of turn, and the question's text."""
    if kind == "send":
        text = message_text(text)
        return services.chat.send(user, current, text, settings, cancel), text
    if current is None:
        raise ChatInputError("Open a chat first.")
    if kind == "regenerate":
        return services.chat.regenerate(user, current, settings, cancel), ""
    text = message_text(text, "The edited question")
    return services.chat.edit_last(user, current, text, settings, cancel), text


class _TurnView:
    """Turns the chat service's events into the Chat tab's updates, one at a time."""

    def __init__(self, history: list, current: int | None, num_ctx: int) -> None:
        self.history = history
        self.current = current
        self.num_ctx = num_ctx
        self.reply = ""
        self.notice = ""
        self.started = False
        # The question and the emptied box were sent: later updates carry what changes (the
        # reply, the notice; the conversation id once, when the turn starts).
        self.question_shown = False
        self.notice_shown: str | None = None  # the notice as last sent, None before the first

    def update(self, event: object) -> tuple:
        if isinstance(event, TurnWaiting):
            self.notice = notice_lines("◷", event.describe())
            if self.question_shown:  # the page shows it already: only the place changes
                return gr.skip(), gr.skip(), gr.skip(), self._notice()
        elif isinstance(event, TurnStarted):
            self.started = True
            self.current = event.conversation.id
            notes = [event.note] if event.note else []
            if event.dropped_messages:
                notes.append(
                    f"{event.dropped_messages} older message(s) left out to fit "
                    f"the {self.num_ctx}-token context."
                )
            self.notice = notice_lines("ℹ", "\n".join(notes)) if notes else ""
            self.history.append({"role": "assistant", "content": ""})
        elif isinstance(event, ChatDelta):
            self.reply += event.text
            self.history[-1] = {"role": "assistant", "content": safe_markdown(self.reply)}
        elif isinstance(event, TurnFinished):
            self.history[-1] = {"role": "assistant", "content": reply_markdown(event.reply)}
            if event.reply.status == "error":
                self.notice = notice_lines("⚠", event.reply.error)
            box = gr.skip() if self.question_shown else ""  # keep what was typed meanwhile
            return self.history, box, self.current, self.notice
        if not self.question_shown:
            self.question_shown = True
            return self.history, "", self.current, self._notice()
        # Each output sent costs the server a step of Gradio's own: the conversation id goes
        # when the turn starts, the notice when it changes.
        current = self.current if isinstance(event, TurnStarted) else gr.skip()
        return self.history, gr.skip(), current, self._notice()

    def _notice(self) -> object:
        """The notice if it changed since the last update, else a skip: a reply's tokens leave
        it as it is."""
        if self.notice == self.notice_shown:
            return gr.skip()
        self.notice_shown = self.notice
        return self.notice


def _role(message: object) -> object:
    return message.get("role") if isinstance(message, dict) else None


def model_advice(services: Services, user, model: object, num_ctx: object) -> tuple[str, bool]:
    """What admission would say about chatting with this model now: (notice, refused)."""
    if model is None or model == "":
        return "", False
    name = model_name(model)
    ctx = parse_int(NUM_CTX, num_ctx, MIN_NUM_CTX, MAX_NUM_CTX)
    decision = services.models.chat.chat_model_check(user, name, ctx)
    if decision is None or decision.verdict == "admit":
        return "", False
    icon = "✖" if decision.verdict == "refuse" else "ℹ"
    return notice_lines(icon, decision.brief()), decision.verdict == "refuse"


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
            # Waits in the fair line yield nothing here: the reply so far is still empty.
            events = services.chat.send(user, conversation_id, message, settings, source="api")
            for event in coalesce_deltas(events):
                if isinstance(event, ChatDelta):
                    reply += event.text
                    yield reply
                elif isinstance(event, TurnFinished) and event.reply.status == "error":
                    raise EngineError(event.reply.error)
        except USER_ERRORS as exc:
            raise user_error(exc) from exc

    gr.api(
        guarded(chat),
        api_name="chat",
        concurrency_id="engine",
        concurrency_limit=services.chat_concurrency,
    )
