"""The Chat tab's events: which component triggers which handler, with what, into what.

Every event is private (hidden from the API docs); the handlers check the signed-in user
anyway, since a page can call any event by fn_index. Turns share the "engine" line.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.chat.handlers import ChatHandlers
from ui.chat.layout import ChatLayout
from ui.common import PRIVATE, guarded


def turn_options(turns_at_once: int) -> dict[str, Any]:
    """How turn events queue: one "engine" line with a worker per turn the fair line may hold.

    So turns wait in the fair line (their place known, Stop leaves it), not in Gradio's queue.
    """
    return {"concurrency_id": "engine", "concurrency_limit": turns_at_once, **PRIVATE}


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


def open_outputs(layout: ChatLayout) -> list[gr.components.Component]:
    """Where an OpenedChat goes, field by field."""
    return [
        layout.state.conversation_id,
        layout.talk.chatbot,
        layout.this_chat.title_box,
        layout.talk.model,
        layout.settings.system_prompt,
        layout.settings.temperature,
        layout.settings.num_ctx,
        layout.talk.notice,
        layout.this_chat.export_file,
    ]


def sidebar_outputs(layout: ChatLayout) -> list[gr.components.Component]:
    """Where a SidebarPage goes, field by field."""
    state = layout.state
    return [layout.sidebar.conv_list, state.page_ids, state.page_no, layout.sidebar.page_label]


def turn_inputs(layout: ChatLayout) -> list[gr.components.Component]:
    """What a turn reads: the message, the open chat, the history shown, the settings, then
    the sidebar's page (refreshed by the turn itself)."""
    form = layout.settings
    settings = [form.system_prompt, form.temperature, form.num_ctx, form.max_tokens]
    talk, state = layout.talk, layout.state
    return [talk.message, state.conversation_id, talk.chatbot, talk.model, *settings, state.page_no]


def turn_outputs(layout: ChatLayout) -> list[gr.components.Component]:
    """What a turn shows: the chat, the box, the open chat, the notice, and the sidebar (a turn
    brings its own refresh: one event per turn, not two). Not Send and Stop: the page swaps
    them itself (_TURN_STARTS, _TURN_ENDS)."""
    talk = layout.talk
    chat = [talk.chatbot, talk.message, layout.state.conversation_id, talk.notice]
    return [*chat, *sidebar_outputs(layout)]


# Stop replaces Send the moment a turn is sent, and Send comes back when its event ends, on the
# page (chat_keys.js): at once for the person even when a burst of turns keeps the server
# busy, and without an update that costs the server a rebuild of both buttons twice a turn.
# The values pass through: the handler gets what the page sent.
_TURN_STARTS = "(...values) => { window.hearthTurnStarts(); return values; }"
_TURN_ENDS = "() => { window.hearthTurnEnds(); }"


def wire(layout: ChatLayout, handlers: ChatHandlers, demo: gr.Blocks, turns_at_once: int) -> None:
    """Attach the Chat tab's events; the sidebar refreshes after anything that changes it.

    turns_at_once is services.chat_concurrency: how many turns the fair line may hold.
    """
    state = layout.state
    refresh = {"fn": guarded(handlers.list_page), "inputs": [state.page_no, state.conversation_id],
               "outputs": sidebar_outputs(layout), "api_name": "chat_list", **PRIVATE}  # fmt: skip
    _wire_turns(layout, handlers, turn_options(turns_at_once))
    _wire_sidebar(layout, handlers, refresh)
    _wire_this_chat(layout, handlers, refresh)
    demo.load(
        guarded(handlers.tab_load),
        None,
        [layout.talk.model, *sidebar_outputs(layout), layout.talk.notice],
        api_name="chat_tab_load",
        **PRIVATE,
    )


def _wire_turns(layout: ChatLayout, handlers: ChatHandlers, turns: dict[str, Any]) -> None:
    talk, inputs, outputs = layout.talk, turn_inputs(layout), turn_outputs(layout)
    turns = {**turns, "js": _TURN_STARTS}
    send = guarded(handlers.send)
    for event in (
        talk.send_btn.click(send, inputs, outputs, api_name="chat_send", **turns),
        talk.message.submit(send, inputs, outputs, api_name="chat_send", **turns),
        talk.chatbot.retry(
            guarded(handlers.regenerate), inputs, outputs, api_name="chat_regenerate", **turns
        ),
        talk.chatbot.edit(
            guarded(handlers.edit), inputs[1:], outputs, api_name="chat_edit", **turns
        ),
    ):
        event.then(None, None, None, js=_TURN_ENDS)
    talk.stop_btn.click(
        guarded(handlers.stop), None, None, api_name="chat_stop", concurrency_limit=None, **PRIVATE
    )
    # .input: only what the user picks; handlers that set the picker compute their own advice.
    advice_inputs = [talk.model, layout.settings.num_ctx]
    for control in advice_inputs:
        control.input(
            guarded(handlers.advise),
            advice_inputs,
            talk.notice,
            api_name="chat_model_advice",
            **PRIVATE,
        )


def _wire_sidebar(layout: ChatLayout, handlers: ChatHandlers, refresh: dict[str, Any]) -> None:
    sidebar, state, opened = layout.sidebar, layout.state, open_outputs(layout)
    sidebar.new_btn.click(
        guarded(handlers.new_chat), None, opened, api_name="chat_new", **PRIVATE
    ).then(**refresh)
    sidebar.conv_list.click(
        guarded(handlers.pick_conversation),
        [sidebar.conv_list, state.page_ids],
        opened,
        api_name="chat_open",
        **PRIVATE,
    ).success(**refresh)  # the card of the chat now open is the one marked
    sidebar.search_box.submit(
        guarded(handlers.search),
        [sidebar.search_box],
        [sidebar.hits, state.hit_refs, layout.talk.notice],
        api_name="chat_search",
        **PRIVATE,
    )
    sidebar.hits.click(
        guarded(handlers.pick_hit),
        [sidebar.hits, state.hit_refs],
        [*opened, state.position],
        api_name="chat_open_hit",
        **PRIVATE,
    ).success(**refresh).then(None, [state.position], None, js=_SCROLL_TO_MESSAGE)
    pager = [state.page_no, state.conversation_id]
    for button, handler, name in (
        (sidebar.prev_btn, handlers.newer, "chat_newer"),
        (sidebar.next_btn, handlers.older, "chat_older"),
    ):
        button.click(guarded(handler), pager, sidebar_outputs(layout), api_name=name, **PRIVATE)


def _wire_this_chat(layout: ChatLayout, handlers: ChatHandlers, refresh: dict[str, Any]) -> None:
    this, state, opened = layout.this_chat, layout.state, open_outputs(layout)
    this.rename_btn.click(
        guarded(handlers.rename),
        [state.conversation_id, this.title_box, state.page_no],
        sidebar_outputs(layout),
        api_name="chat_rename",
        **PRIVATE,
    )
    ask, keep = guarded(handlers.ask_delete), guarded(handlers.hide_delete)
    this.delete_btn.click(ask, None, this.confirm_row, api_name="chat_delete_ask", **PRIVATE)
    this.keep_btn.click(keep, None, this.confirm_row, api_name="chat_delete_keep", **PRIVATE)
    this.confirm_btn.click(
        guarded(handlers.delete),
        [state.conversation_id],
        opened,
        api_name="chat_delete",
        **PRIVATE,
    ).then(keep, None, this.confirm_row, api_name="chat_delete_keep", **PRIVATE).then(**refresh)
    for button, handler, name in (
        (this.export_md_btn, handlers.export_markdown, "chat_export_md"),
        (this.export_json_btn, handlers.export_json, "chat_export_json"),
    ):
        button.click(
            guarded(handler), [state.conversation_id], this.export_file, api_name=name, **PRIVATE
        )
    layout.sidebar.import_btn.upload(
        guarded(handlers.import_file),
        [layout.sidebar.import_btn],
        opened,
        api_name="chat_import",
        **PRIVATE,
    ).then(**refresh)
