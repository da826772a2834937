"""The Chat tab: conversation sidebar, streaming chat, generation settings."""

from __future__ import annotations

import contextlib
import html
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from backend.chat.conversations import hidden_messages_note
from backend.chat.turns import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    stored_settings,
)
from ui.chat_render import chat_history, conversation_card, model_choice, search_card
from ui.chat_turns import model_advice, notice_lines, register_api, stream_turn
from ui.checked_inputs import CheckedDropdown, CheckedNumber, CheckedSlider
from ui.common import PRIVATE, acting_user, guarded, safe_markdown

if TYPE_CHECKING:
    from backend.services import Services

CONTEXT_CHOICES = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
PER_PAGE = 15


def _html_dataset(label: str) -> gr.Dataset:
    return gr.Dataset(
        components=[gr.HTML(visible=False)],
        samples=[],
        type="index",
        label=label,
        layout="table",
        samples_per_page=PER_PAGE,
    )


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Chat tab's components inside the current gr.Tab and wire their events."""
    running: dict[str, threading.Event] = {}  # session -> the Stop flag of its turn in flight

    conv_id = gr.State(None)
    page_ids = gr.State([])
    page_no = gr.State(1)
    hit_refs = gr.State([])

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=270, elem_classes=["sidebar"]):
            new_btn = gr.Button("+ New chat", variant="primary", elem_id="new-chat")
            search_box = gr.Textbox(
                placeholder="Search your chats…",
                show_label=False,
                elem_id="chat-search",
                submit_btn="Search",
            )
            hits = _html_dataset("Search results")
            hits.visible = False
            conv_list = _html_dataset("Your chats")
            with gr.Row(equal_height=True, elem_classes=["pager"]):
                prev_btn = gr.Button("‹", size="sm", min_width=36, scale=0)
                page_label = gr.Markdown("", elem_classes=["page-label"], elem_id="chat-pages")
                next_btn = gr.Button("›", size="sm", min_width=36, scale=0)
            with gr.Accordion("This chat", open=False, elem_id="this-chat"):
                title_box = gr.Textbox(label="Title", elem_id="chat-title")
                rename_btn = gr.Button("Rename", size="sm")
                with gr.Row():
                    export_md_btn = gr.Button("Export .md", size="sm")
                    export_json_btn = gr.Button("Export .json", size="sm")
                export_file = gr.File(label="Download", visible=False, interactive=False)
                delete_btn = gr.Button("Delete chat", variant="stop", size="sm")
                with gr.Row(visible=False) as confirm_row:
                    confirm_btn = gr.Button("Yes, delete it", variant="stop", size="sm")
                    keep_btn = gr.Button("Keep", size="sm")
            import_btn = gr.UploadButton("Import .json", file_types=[".json"], size="sm")
        with gr.Column(scale=4):
            model = CheckedDropdown(label="Model", choices=[], elem_id="model-picker", scale=2)
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                show_label=False,
                height=480,
                editable="user",
                buttons=["copy"],
                sanitize_html=True,
                allow_tags=False,
                render_markdown=True,
                placeholder="### Ask anything\nReplies stream from the serving engine.",
                feedback_options=None,
                group_consecutive_messages=False,
            )
            notice = gr.Markdown("", elem_id="chat-notice")
            with gr.Row(equal_height=True):
                message = gr.Textbox(
                    placeholder="Message (Enter to send, Shift+Enter for a new line)",
                    show_label=False,
                    lines=2,
                    max_lines=10,
                    scale=8,
                    elem_id="message",
                )
                send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                stop_btn = gr.Button("Stop", variant="stop", scale=1, visible=False, elem_id="stop")
            with gr.Accordion("Generation settings", open=False):
                system_prompt = gr.Textbox(
                    label="System prompt", value=DEFAULT_SYSTEM_PROMPT, lines=2
                )
                with gr.Row():
                    temperature = CheckedSlider(
                        0.0, 2.0, value=DEFAULT_TEMPERATURE, step=0.05, label="Temperature"
                    )
                    num_ctx = CheckedDropdown(
                        CONTEXT_CHOICES, value=DEFAULT_NUM_CTX, label="Context length (num_ctx)"
                    )
                    max_tokens = CheckedNumber(
                        value=0,
                        minimum=0,
                        precision=0,
                        elem_id="max-tokens",
                        label="Max reply tokens (0 = until the model stops)",
                    )

    # -- sidebar ---------------------------------------------------------------------------

    @guarded
    def list_page(page: int, current: int | None, request: gr.Request):
        user = acting_user(services, request)
        result = services.conversations.page(user, page, PER_PAGE)
        samples = [[conversation_card(c, current)] for c in result.conversations]
        label = f"{result.page} / {result.pages} · {result.total} chats"
        return (
            gr.Dataset(samples=samples),
            [c.id for c in result.conversations],
            result.page,
            label,
        )

    sidebar_outputs = [conv_list, page_ids, page_no, page_label]

    @guarded
    def open_conversation(conversation_id: int | None, request: gr.Request):
        if conversation_id is None:
            return _blank_chat(services, request)
        user = acting_user(services, request)
        conversation, messages = services.conversations.open(user, conversation_id)
        stored = stored_settings(
            conversation.model, conversation.system_prompt, conversation.options
        )
        notes = list(stored.notes)
        if hidden := hidden_messages_note(conversation, len(messages)):
            notes.append(hidden)
        names = [m.name for m in services.installed_models(user)]
        model_name, missing = model_choice(stored.model, names)
        num_ctx = _context_choice(stored.options.num_ctx, notes)
        advice = model_advice(services, user, model_name, num_ctx)[0] if model_name else missing
        return (
            conversation.id,
            chat_history(messages),
            conversation.title,
            gr.Dropdown(choices=names, value=model_name),
            stored.system_prompt,
            stored.options.temperature,
            num_ctx,
            _notice(notes, advice),
            gr.File(visible=False),
        )

    open_outputs = [
        conv_id,
        chatbot,
        title_box,
        model,
        system_prompt,
        temperature,
        num_ctx,
        notice,
        export_file,
    ]

    @guarded
    def pick_conversation(index: int, ids: list[int], request: gr.Request):
        return open_conversation(ids[index], request)

    @guarded
    def search(query: str, request: gr.Request):
        user = acting_user(services, request)
        found = services.conversations.search(user, query)
        refs = [(h.conversation_id, h.message_id) for h in found]
        note = f"{len(found)} match(es) for “{safe_markdown(query)}”" if query.strip() else ""
        return (
            gr.Dataset(samples=[[search_card(h)] for h in found], visible=bool(query.strip())),
            refs,
            note,
        )

    @guarded
    def pick_hit(index: int, refs: list[tuple[int, int]], request: gr.Request):
        conversation_id, message_id = refs[index]
        opened = open_conversation(conversation_id, request)
        user = acting_user(services, request)
        _, messages = services.conversations.open(user, conversation_id)
        shown = [m.id for m in messages if m.role in ("user", "assistant")]
        position = shown.index(message_id) if message_id in shown else -1
        return (*opened, position)

    # -- chat turns ------------------------------------------------------------------------

    def turn(kind: str):
        def run(
            text, current, history, model_name, system, temp, ctx, max_new, request: gr.Request
        ):
            # Every value is checked (and admission consulted) by the chat service, whichever
            # way the turn arrives; stream_turn turns a refusal into a notice.
            cancel = threading.Event()
            running[request.session_hash] = cancel
            try:
                raw = (model_name, system, temp, ctx, max_new)
                yield from stream_turn(services, kind, text, current, history, raw, request, cancel)
            finally:
                running.pop(request.session_hash, None)

        return guarded(run)

    @guarded
    def stop(request: gr.Request) -> None:
        if (flag := running.get(request.session_hash)) is not None:
            flag.set()

    setting_inputs = [model, system_prompt, temperature, num_ctx, max_tokens]
    turn_inputs = [message, conv_id, chatbot, *setting_inputs]
    turn_outputs = [chatbot, message, conv_id, notice, send_btn, stop_btn]
    # Every turn the fair line may hold gets a worker: turns wait in the line, where their
    # place is known and Stop leaves it, not in Gradio's queue.
    limit = services.chat_concurrency
    shared = {"concurrency_id": "engine", "concurrency_limit": limit, **PRIVATE}
    refresh = {"fn": list_page, "inputs": [page_no, conv_id], "outputs": sidebar_outputs,
               "api_name": "chat_list", **PRIVATE}  # fmt: skip
    send = turn("send")
    send_btn.click(send, turn_inputs, turn_outputs, api_name="chat_send", **shared).then(**refresh)
    message.submit(send, turn_inputs, turn_outputs, api_name="chat_send", **shared).then(**refresh)
    chatbot.retry(
        turn("regenerate"), turn_inputs, turn_outputs, api_name="chat_regenerate", **shared
    ).then(**refresh)

    @guarded
    def edit(
        current,
        history,
        model_name,
        system,
        temp,
        ctx,
        max_new,
        edit_data: gr.EditData,
        request: gr.Request,
    ):
        history = history if isinstance(history, list) else []
        questions = [
            i for i, m in enumerate(history) if isinstance(m, dict) and m.get("role") == "user"
        ]
        index = getattr(edit_data, "index", None)
        if not questions or index != questions[-1]:
            gr.Warning("Only the last question can be edited and sent again.")
            yield history, gr.Textbox(), current, "", gr.Button(), gr.Button()
            return
        yield from turn("edit")(
            getattr(edit_data, "value", None),
            current,
            history[:index],
            model_name,
            system,
            temp,
            ctx,
            max_new,
            request,
        )

    chatbot.edit(edit, turn_inputs[1:], turn_outputs, api_name="chat_edit", **shared)
    stop_btn.click(stop, None, None, api_name="chat_stop", concurrency_limit=None, **PRIVATE)

    @guarded
    def advise(model_name: str, ctx: int, request: gr.Request) -> str:
        return model_advice(services, acting_user(services, request), model_name, ctx)[0]

    for control in (model, num_ctx):  # .input: what the user picks; handlers that set them say
        control.input(advise, [model, num_ctx], notice, api_name="chat_model_advice", **PRIVATE)

    # -- wiring ------------------------------------------------------------------------------

    @guarded
    def new_chat(request: gr.Request):
        return _blank_chat(services, request)

    new_btn.click(new_chat, None, open_outputs, api_name="chat_new", **PRIVATE).then(**refresh)
    conv_list.click(
        pick_conversation, [conv_list, page_ids], open_outputs, api_name="chat_open", **PRIVATE
    )
    search_box.submit(
        search, [search_box], [hits, hit_refs, notice], api_name="chat_search", **PRIVATE
    )
    position = gr.Number(visible=False)
    hits.click(
        pick_hit,
        [hits, hit_refs],
        [*open_outputs, position],
        api_name="chat_open_hit",
        **PRIVATE,
    ).then(None, [position], None, js=_SCROLL_TO_MESSAGE)

    @guarded
    def newer(page: int, current: int | None, request: gr.Request):
        return list_page(page - 1, current, request)

    @guarded
    def older(page: int, current: int | None, request: gr.Request):
        return list_page(page + 1, current, request)

    prev_btn.click(newer, [page_no, conv_id], sidebar_outputs, api_name="chat_newer", **PRIVATE)
    next_btn.click(older, [page_no, conv_id], sidebar_outputs, api_name="chat_older", **PRIVATE)

    def rename(current, title, page, request: gr.Request):
        if current is None:
            raise ChatInputError("Open a chat to rename it.")
        services.conversations.rename(acting_user(services, request), current, title)
        return list_page(page, current, request)

    rename_btn.click(
        guarded(rename),
        [conv_id, title_box, page_no],
        sidebar_outputs,
        api_name="chat_rename",
        **PRIVATE,
    )

    @guarded
    def ask_delete() -> gr.Row:
        return gr.Row(visible=True)

    @guarded
    def hide_delete() -> gr.Row:
        return gr.Row(visible=False)

    delete_btn.click(ask_delete, None, confirm_row, api_name="chat_delete_ask", **PRIVATE)
    keep_btn.click(hide_delete, None, confirm_row, api_name="chat_delete_keep", **PRIVATE)

    def delete(current, request: gr.Request):
        if current is not None:
            services.conversations.delete(acting_user(services, request), current)
        return _blank_chat(services, request)

    confirm_btn.click(
        guarded(delete), [conv_id], open_outputs, api_name="chat_delete", **PRIVATE
    ).then(hide_delete, None, confirm_row, api_name="chat_delete_keep", **PRIVATE).then(**refresh)

    def export(kind: str):
        def run(current, request: gr.Request):
            if current is None:
                raise ChatInputError("Open a chat to export it.")
            user = acting_user(services, request)
            if kind == "md":
                text = services.conversations.export_markdown(user, current)
            else:
                text = services.conversations.export_json(user, current)
            path = Path(tempfile.mkdtemp(prefix="hearth-export-")) / f"chat-{current}.{kind}"
            path.write_text(text, encoding="utf-8")
            return gr.File(value=str(path), visible=True)

        return guarded(run)

    export_md_btn.click(export("md"), [conv_id], export_file, api_name="chat_export_md", **PRIVATE)
    export_json_btn.click(
        export("json"), [conv_id], export_file, api_name="chat_export_json", **PRIVATE
    )

    def import_file(file, request: gr.Request):
        # Gradio hands over a path inside its upload folder (it refuses any other path from a
        # page); the upload is deleted once handled, whatever the outcome.
        upload = Path(file) if isinstance(file, str) and file else None
        try:
            user = acting_user(services, request)
            if upload is None:
                raise ChatInputError("Choose a .json export file to import.")
            try:
                raw = upload.read_bytes()
            except OSError as exc:
                raise ChatInputError(
                    "The uploaded file could not be read; upload it again."
                ) from exc
            conversation = services.conversations.import_json(user, raw)
        finally:
            if upload is not None and upload.is_file():
                with contextlib.suppress(OSError):  # cleanup must not hide the import's outcome
                    upload.unlink()
                    if upload.parent != Path(gr.utils.get_upload_folder()):
                        upload.parent.rmdir()  # Gradio's folder for this one upload, now empty
        gr.Info(f"Imported “{html.escape(conversation.title)}”.")  # toasts render HTML
        return open_conversation(conversation.id, request)

    import_btn.upload(
        guarded(import_file), [import_btn], open_outputs, api_name="chat_import", **PRIVATE
    ).then(**refresh)

    @guarded
    def on_load(request: gr.Request):
        user = services.auth.resolve(request.username)
        if user is None:
            return gr.Dropdown(choices=[]), *list_page_empty(), ""
        names = [m.name for m in services.installed_models(user)]
        first = names[0] if names else None
        advice = model_advice(services, user, first, DEFAULT_NUM_CTX)[0] if first else ""
        return (
            gr.Dropdown(choices=names, value=first),
            *list_page(1, None, request),
            advice,
        )

    load_outputs = [model, *sidebar_outputs, notice]
    demo.load(on_load, None, load_outputs, api_name="chat_tab_load", **PRIVATE)

    register_api(services)


def list_page_empty():
    return gr.Dataset(samples=[]), [], 1, ""


def _notice(notes: list[str], advice: str) -> str:
    """Notes about a reopened chat (escaped, a line each), then admission's advice."""
    parts = [notice_lines("ℹ", "\n".join(notes)) if notes else "", advice]
    return "\n\n".join(part for part in parts if part)


def _context_choice(num_ctx: int, notes: list[str]) -> int:
    """A stored context length as one of the picker's choices (the largest not above it)."""
    if num_ctx in CONTEXT_CHOICES:
        return num_ctx
    choice = max((c for c in CONTEXT_CHOICES if c <= num_ctx), default=CONTEXT_CHOICES[0])
    notes.append(f"The stored context length {num_ctx} is not offered here; using {choice}.")
    return choice


def _blank_chat(services: Services, request: gr.Request):
    acting_user(services, request)
    return (
        None,
        [],
        "",
        gr.Dropdown(),
        DEFAULT_SYSTEM_PROMPT,
        DEFAULT_TEMPERATURE,
        DEFAULT_NUM_CTX,
        "",
        gr.File(visible=False),
    )


_SCROLL_TO_MESSAGE = """
(position) => {
  if (position === null || position < 0) return;
  setTimeout(() => {
    const rows = document.querySelectorAll('#chatbot .message-row');
    const row = rows[position];
    if (row) { row.scrollIntoView({block: 'center'}); row.classList.add('search-target'); }
  }, 300);
}
"""
