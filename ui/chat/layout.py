"""The Chat tab's components: the conversation sidebar, the chat, the generation settings."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from backend.chat.turns import DEFAULT_NUM_CTX, DEFAULT_SYSTEM_PROMPT, DEFAULT_TEMPERATURE
from ui.checked_inputs import CheckedDropdown, CheckedNumber, CheckedSlider

CONTEXT_CHOICES = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
PER_PAGE = 15


@dataclass(frozen=True)
class ChatState:
    """What the page session remembers between events (never shown)."""

    conversation_id: gr.State  # the open chat, None for a new one
    page_ids: gr.State  # the ids of the sidebar's rows, in order
    page_no: gr.State
    hit_refs: gr.State  # (conversation id, message id) of each search hit, in order
    position: gr.Number  # the row of the message a search hit opened, for scrolling to it


@dataclass(frozen=True)
class Sidebar:
    new_btn: gr.Button
    search_box: gr.Textbox
    hits: gr.Dataset
    conv_list: gr.Dataset
    prev_btn: gr.Button
    page_label: gr.Markdown
    next_btn: gr.Button
    import_btn: gr.UploadButton


@dataclass(frozen=True)
class ThisChat:
    """The "This chat" accordion: rename, export, delete with a confirmation."""

    title_box: gr.Textbox
    rename_btn: gr.Button
    export_md_btn: gr.Button
    export_json_btn: gr.Button
    export_file: gr.File
    delete_btn: gr.Button
    confirm_row: gr.Row
    confirm_btn: gr.Button
    keep_btn: gr.Button


@dataclass(frozen=True)
class Talk:
    """The model picker, the chat itself and the message box."""

    model: gr.Dropdown
    chatbot: gr.Chatbot
    notice: gr.Markdown
    message: gr.Textbox
    send_btn: gr.Button
    stop_btn: gr.Button


@dataclass(frozen=True)
class TurnSettingsForm:
    system_prompt: gr.Textbox
    temperature: gr.Slider
    num_ctx: gr.Dropdown
    max_tokens: gr.Number


@dataclass(frozen=True)
class ChatLayout:
    state: ChatState
    sidebar: Sidebar
    this_chat: ThisChat
    talk: Talk
    settings: TurnSettingsForm


def layout() -> ChatLayout:
    """Create the Chat tab's components inside the current gr.Tab; no events."""
    states = (gr.State(None), gr.State([]), gr.State(1), gr.State([]))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=270, elem_classes=["sidebar"]):
            sidebar, this_chat = _sidebar()
        with gr.Column(scale=4):
            talk = _talk()
            with gr.Accordion("Generation settings", open=False):
                settings = _settings()
    position = gr.Number(visible=False)
    return ChatLayout(ChatState(*states, position), sidebar, this_chat, talk, settings)


def _html_dataset(label: str) -> gr.Dataset:
    return gr.Dataset(
        components=[gr.HTML(visible=False)],
        samples=[],
        type="index",
        label=label,
        layout="table",
        samples_per_page=PER_PAGE,
    )


def _sidebar() -> tuple[Sidebar, ThisChat]:
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
        this_chat = _this_chat()
    import_btn = gr.UploadButton("Import .json", file_types=[".json"], size="sm")
    sidebar = Sidebar(
        new_btn, search_box, hits, conv_list, prev_btn, page_label, next_btn, import_btn
    )
    return sidebar, this_chat


def _this_chat() -> ThisChat:
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
    return ThisChat(
        title_box,
        rename_btn,
        export_md_btn,
        export_json_btn,
        export_file,
        delete_btn,
        confirm_row,
        confirm_btn,
        keep_btn,
    )


def _talk() -> Talk:
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
        # Both are shown to Gradio; the page hides the one that does not apply (hearth.css).
        stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
    return Talk(model, chatbot, notice, message, send_btn, stop_btn)


def _settings() -> TurnSettingsForm:
    system_prompt = gr.Textbox(label="System prompt", value=DEFAULT_SYSTEM_PROMPT, lines=2)
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
    return TurnSettingsForm(system_prompt, temperature, num_ctx, max_tokens)
