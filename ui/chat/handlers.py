"""The Chat tab's handlers: the services and the signed-in user in, values and updates out.

Each method takes what its event sends plus the gr.Request (the user comes from it, never from
a form field) and returns, in wiring's output order, what the components show. User-facing
errors are raised as they are; wiring turns them into toasts (ui.common.guarded).
"""

from __future__ import annotations

import contextlib
import html
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from backend.auth import User
from backend.chat.conversations import hidden_messages_note
from backend.chat.turns import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    stored_settings,
)
from backend.chat.validation import check_text
from backend.services import Services
from backend.units import counted
from ui.chat.layout import CONTEXT_CHOICES, PER_PAGE
from ui.chat.picks import EditEvent, is_id, is_index, picked
from ui.chat.render import chat_history, conversation_card, model_choice, search_card
from ui.chat.turns import SIDEBAR_KEPT, model_advice, notice_lines, stream_turn
from ui.common import Caller, CancelRegistry, acting_user, safe_markdown

MAX_QUERY_CHARS = 1_000  # longer searches are refused before they reach the index
MAX_TITLE_CHARS = 1_000  # the store keeps the first 200
# chatbot, message box, conversation id, notice, then the sidebar (a SidebarPage)
TurnUpdate = tuple[Any, ...]


class SidebarPage(NamedTuple):
    """One page of the user's chats: the rows, their ids, the page shown and its label."""

    rows: dict[str, Any]  # a Dataset update
    ids: list[int]
    page: int
    label: str


class OpenedChat(NamedTuple):
    """A chat as the tab shows it once opened (or a blank one): history and settings."""

    conversation_id: int | None
    history: list[dict[str, str]]
    title: str
    model: dict[str, Any]  # a Dropdown update: the installed models, the stored one if here
    system_prompt: str
    temperature: float
    num_ctx: int
    notice: str
    export_file: dict[str, Any]  # hides the download of an earlier export


class SearchResults(NamedTuple):
    hits: dict[str, Any]  # a Dataset update, shown only while there is a query
    refs: list[tuple[int, int]]  # (conversation id, message id) per hit
    note: str


class ChatHandlers:
    """Everything the Chat tab does, callable without a browser."""

    def __init__(self, services: Services, running: CancelRegistry | None = None) -> None:
        self._services = services
        self._running = running if running is not None else CancelRegistry()

    def _user(self, request: Caller | None) -> User:
        return acting_user(self._services, request)

    # -- the sidebar ---------------------------------------------------------------------

    def list_page(self, page: int, current: int | None, request: gr.Request) -> SidebarPage:
        result = self._services.conversations.page(self._user(request), page, PER_PAGE)
        samples = [[conversation_card(c, current)] for c in result.conversations]
        label = f"{result.page} / {result.pages} · {result.total} chats"
        ids = [c.id for c in result.conversations]
        return SidebarPage(gr.update(samples=samples), ids, result.page, label)

    def newer(self, page: int, current: int | None, request: gr.Request) -> SidebarPage:
        return self.list_page(page - 1, current, request)

    def older(self, page: int, current: int | None, request: gr.Request) -> SidebarPage:
        return self.list_page(page + 1, current, request)

    def tab_load(self, request: gr.Request) -> tuple[Any, ...]:
        """The model picker, the first page of chats and the first model's advice, on page load.

        Setting the picker does not fire its .input, so the advice is computed here.
        """
        user = self._services.auth.resolve(getattr(request, "username", None))
        if user is None:
            return gr.update(choices=[]), *SidebarPage(gr.update(samples=[]), [], 1, ""), ""
        names = [m.name for m in self._services.installed_models(user)]
        first = names[0] if names else None
        advice = model_advice(self._services, user, first, DEFAULT_NUM_CTX)[0] if first else ""
        picker = gr.update(choices=names, value=first)
        return picker, *self.list_page(1, None, request), advice

    def search(self, query: object, request: gr.Request) -> SearchResults:
        user = self._user(request)
        query = check_text("The search", query, MAX_QUERY_CHARS)
        found = self._services.conversations.search(user, query)
        refs = [(h.conversation_id, h.message_id) for h in found]
        count = counted(len(found), "match", "matches")
        note = f"{count} for “{safe_markdown(query)}”" if query.strip() else ""
        hits = gr.update(samples=[[search_card(h)] for h in found], visible=bool(query.strip()))
        return SearchResults(hits, refs, note)

    # -- opening a chat ------------------------------------------------------------------

    def new_chat(self, request: gr.Request) -> OpenedChat:
        self._user(request)
        return OpenedChat(
            None,
            [],
            "",
            gr.update(),
            DEFAULT_SYSTEM_PROMPT,
            DEFAULT_TEMPERATURE,
            DEFAULT_NUM_CTX,
            "",
            gr.update(visible=False),
        )

    def open_conversation(self, conversation_id: int | None, request: gr.Request) -> OpenedChat:
        """Its newest messages and its settings; a stored value the tab cannot use gets a note."""
        if conversation_id is None:
            return self.new_chat(request)
        user = self._user(request)
        conversation, messages = self._services.conversations.open(user, conversation_id)
        stored = stored_settings(
            conversation.model, conversation.system_prompt, conversation.options
        )
        notes = list(stored.notes)
        if hidden := hidden_messages_note(conversation, len(messages)):
            notes.append(hidden)
        # The picker is only ever given one of its choices (see model_choice); setting it does
        # not fire its .input, so admission's advice for the reopened chat is computed here.
        names = [m.name for m in self._services.installed_models(user)]
        model_name, missing = model_choice(stored.model, names)
        num_ctx = _context_choice(stored.options.num_ctx, notes)
        advice = missing
        if model_name:
            advice = model_advice(self._services, user, model_name, num_ctx)[0]
        return OpenedChat(
            conversation.id,
            chat_history(messages),
            conversation.title,
            gr.update(choices=names, value=model_name),
            stored.system_prompt,
            stored.options.temperature,
            num_ctx,
            _notice(notes, advice),
            gr.update(visible=False),
        )

    def pick_conversation(self, index: object, ids: object, request: gr.Request) -> OpenedChat:
        """The chat in the sidebar's row `index`; ids are the rows' chats, in order."""
        self._user(request)
        conversation_id = picked(index, ids, "Pick a chat from the list")
        if not is_id(conversation_id):
            raise ChatInputError("Pick a chat from the list; that row holds no chat.")
        return self.open_conversation(conversation_id, request)

    def pick_hit(self, index: object, refs: object, request: gr.Request) -> tuple[Any, ...]:
        """The hit's chat opened, and the row of its message among those shown (-1: not shown)."""
        self._user(request)
        ref = picked(index, refs, "Pick a search result from the list")
        if not (isinstance(ref, list | tuple) and len(ref) == 2 and all(map(is_id, ref))):
            raise ChatInputError("Pick a search result from the list; that row holds no result.")
        conversation_id, message_id = ref
        opened = self.open_conversation(conversation_id, request)
        _, messages = self._services.conversations.open(self._user(request), conversation_id)
        shown = [m.id for m in messages if m.role in ("user", "assistant")]
        position = shown.index(message_id) if message_id in shown else -1
        return (*opened, position)

    # -- this chat: rename, delete, export, import ---------------------------------------

    def rename(
        self, current: int | None, title: object, page: int, request: gr.Request
    ) -> SidebarPage:
        user = self._user(request)
        if current is None:
            raise ChatInputError("Open a chat to rename it.")
        title = check_text("The title", title, MAX_TITLE_CHARS)
        self._services.conversations.rename(user, current, title)
        return self.list_page(page, current, request)

    def ask_delete(self) -> dict[str, Any]:
        return gr.update(visible=True)

    def hide_delete(self) -> dict[str, Any]:
        return gr.update(visible=False)

    def delete(self, current: int | None, request: gr.Request) -> OpenedChat:
        if current is not None:
            self._services.conversations.delete(self._user(request), current)
        return self.new_chat(request)

    def export_markdown(self, current: int | None, request: gr.Request) -> dict[str, Any]:
        return self._export("md", current, request)

    def export_json(self, current: int | None, request: gr.Request) -> dict[str, Any]:
        return self._export("json", current, request)

    def _export(self, kind: str, current: int | None, request: gr.Request) -> dict[str, Any]:
        """The chat written to a fresh temporary file, offered for download."""
        if current is None:
            raise ChatInputError("Open a chat to export it.")
        user = self._user(request)
        conversations = self._services.conversations
        if kind == "md":
            text = conversations.export_markdown(user, current)
        else:
            text = conversations.export_json(user, current)
        path = Path(tempfile.mkdtemp(prefix="hearth-export-")) / f"chat-{current}.{kind}"
        path.write_text(text, encoding="utf-8")
        return gr.update(value=str(path), visible=True)

    def import_file(self, file: object, request: gr.Request) -> OpenedChat:
        """Import an export; the upload is deleted once handled, whatever the outcome."""
        # Gradio hands over a path inside its upload folder (it refuses any other path from a
        # page).
        upload = Path(file) if isinstance(file, str) and file else None
        try:
            user = self._user(request)
            if upload is None:
                raise ChatInputError("Choose a .json export file to import.")
            try:
                raw = upload.read_bytes()
            except OSError as exc:
                raise ChatInputError(
                    "The uploaded file could not be read; upload it again."
                ) from exc
            conversation = self._services.conversations.import_json(user, raw)
        finally:
            if upload is not None:
                _remove_upload(upload)
        gr.Info(f"Imported “{html.escape(conversation.title)}”.")  # toasts render HTML
        return self.open_conversation(conversation.id, request)

    # -- chat turns ----------------------------------------------------------------------

    def send(
        self,
        text: object,
        current: object,
        history: object,
        model_name: object,
        system: object,
        temp: object,
        ctx: object,
        max_new: object,
        page: object,
        request: gr.Request,
    ) -> Iterator[TurnUpdate]:
        """Stream a new question's turn: the question, then the reply as it grows."""
        raw = (model_name, system, temp, ctx, max_new)
        yield from self._turn("send", text, current, history, raw, page, request)

    def regenerate(
        self,
        text: object,
        current: object,
        history: object,
        model_name: object,
        system: object,
        temp: object,
        ctx: object,
        max_new: object,
        page: object,
        request: gr.Request,
    ) -> Iterator[TurnUpdate]:
        """Stream a new reply to the last question, in place of the last reply."""
        raw = (model_name, system, temp, ctx, max_new)
        yield from self._turn("regenerate", text, current, history, raw, page, request)

    def edit(
        self,
        current: object,
        history: object,
        model_name: object,
        system: object,
        temp: object,
        ctx: object,
        max_new: object,
        page: object,
        edit_data: EditEvent,
        request: gr.Request,
    ) -> Iterator[TurnUpdate]:
        """Send the edited last question again; any other edit is refused with a warning."""
        shown = history if isinstance(history, list) else []
        questions = [
            i for i, m in enumerate(shown) if isinstance(m, dict) and m.get("role") == "user"
        ]
        index = getattr(edit_data, "index", None)
        if not questions or not is_index(index) or index != questions[-1]:
            gr.Warning("Only the last question can be edited and sent again.")
            yield shown, gr.update(), current, "", *SIDEBAR_KEPT
            return
        text = getattr(edit_data, "value", None)
        raw = (model_name, system, temp, ctx, max_new)
        yield from self._turn("edit", text, current, shown[:index], raw, page, request)

    def _turn(
        self,
        kind: str,
        text: object,
        current: object,
        history: object,
        raw: tuple[object, ...],
        page: object,
        request: gr.Request,
    ) -> Iterator[TurnUpdate]:
        # Every value is checked (and admission consulted) by the chat service, whichever way
        # the turn arrives; stream_turn turns a refusal into a notice. The sidebar comes with
        # the turn (no second event per turn): the page the tab shows, refreshed.
        shown_page = page if is_id(page) else 1

        def sidebar(conversation_id: int | None) -> SidebarPage:
            return self.list_page(shown_page, conversation_id, request)

        with self._running.running(_session(request)) as cancel:
            yield from stream_turn(
                self._services, kind, text, current, history, raw, request, cancel, sidebar
            )

    def stop(self, request: gr.Request) -> None:
        """Stop the turn in flight of this page session (not another tab's)."""
        self._running.cancel(_session(request))

    def advise(self, model_name: object, ctx: object, request: gr.Request) -> str:
        """What admission would say about chatting with this model at this context length."""
        return model_advice(self._services, self._user(request), model_name, ctx)[0]


def _notice(notes: list[str], advice: str) -> str:
    """Notes about a reopened chat (escaped, a line each), then admission's advice."""
    parts = [notice_lines("ℹ", "\n".join(notes)) if notes else "", advice]
    return "\n\n".join(part for part in parts if part)


def _session(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


def _context_choice(num_ctx: int, notes: list[str]) -> int:
    """A stored context length as one of the picker's choices (the largest not above it)."""
    if num_ctx in CONTEXT_CHOICES:
        return num_ctx
    choice = max((c for c in CONTEXT_CHOICES if c <= num_ctx), default=CONTEXT_CHOICES[0])
    notes.append(f"The stored context length {num_ctx} is not offered here; using {choice}.")
    return choice


def _remove_upload(upload: Path) -> None:
    """Delete an upload and Gradio's folder for it; cleanup must not hide the import's outcome."""
    if not upload.is_file():
        return
    with contextlib.suppress(OSError):
        upload.unlink()
        if upload.parent != Path(gr.utils.get_upload_folder()):
            upload.parent.rmdir()  # Gradio's folder for this one upload, now empty
