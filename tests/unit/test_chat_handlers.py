"""The Chat tab's handlers called directly: real Services on a temporary data folder, a stub
request (the signed-in name and the page session), no browser. Chromium tests keep what only
a page shows (keys, rendering, scrolling)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from backend.auth import CLI, PermissionDenied
from backend.chat.turns import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    ChatInputError,
    TurnWaiting,
)
from backend.services import Services, StoreError
from backend.settings import Settings
from tests.support.ui_services import StubRequest
from ui.chat import wiring
from ui.chat.handlers import ChatHandlers, OpenedChat, SearchResults, SidebarPage
from ui.chat.layout import PER_PAGE, layout
from ui.chat.picks import EditEvent
from ui.common import CancelRegistry

MODEL = "smollm2:135m"  # the bundled model the embedded engine always lists


ALICE = StubRequest("alice")
BOB = StubRequest("bob")
ANONYMOUS = StubRequest(None)
TAB, OTHER_TAB = ALICE.session_hash, "another-tab"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = Services.build(Settings(data_dir=tmp_path, engine="embedded"))
    built.users.add_user(CLI, "alice", "alice-pass-123", "staff")
    built.users.add_user(CLI, "bob", "bob-pass-1234", "staff")
    yield built
    built.close()


@pytest.fixture
def running() -> CancelRegistry:
    return CancelRegistry()


@pytest.fixture
def handlers(services: Services, running: CancelRegistry) -> ChatHandlers:
    return ChatHandlers(services, running)


def user_id(services: Services, name: str) -> int:
    user = services.auth.resolve(name)
    assert user is not None
    return user.id


def new_chat(services: Services, owner: str, title: str, *texts: str, **settings) -> int:
    """A conversation of `owner` holding question/reply pairs made of texts, in order."""
    owner_id = user_id(services, owner)
    conversation = services.store.create_conversation(owner_id, title=title, **settings)
    for index, text in enumerate(texts):
        role = ("user", "assistant")[index % 2]
        services.store.add_message(owner_id, conversation.id, role=role, content=text)
    return conversation.id


def poison_options(services: Services, conversation_id: int, options_json: str) -> None:
    """Write a conversation's options as a broken or hostile row would hold them."""
    with sqlite3.connect(services.settings.db_path) as db:
        db.execute(
            "UPDATE conversations SET options_json = ? WHERE id = ?",
            (options_json, conversation_id),
        )


def title_of(services: Services, owner: str, conversation_id: int) -> str:
    return services.store.get_conversation(user_id(services, owner), conversation_id).title


# -- opening a chat ------------------------------------------------------------------------


def test_opening_a_chat_returns_its_history_and_settings(services, handlers):
    options = {"temperature": 0.5, "num_ctx": 1024}
    chat = new_chat(services, "alice", "Trip", "Where to?", "Lisbon.", model=MODEL,
                    system_prompt="Be brief.", options=options)  # fmt: skip
    opened = handlers.open_conversation(chat, ALICE)
    assert isinstance(opened, OpenedChat)
    assert opened.conversation_id == chat
    assert [(m["role"], m["content"]) for m in opened.history] == [
        ("user", "Where to?"),
        ("assistant", "Lisbon."),
    ]
    assert opened.title == "Trip"
    assert opened.model["value"] == MODEL and MODEL in opened.model["choices"]
    assert (opened.system_prompt, opened.temperature, opened.num_ctx) == ("Be brief.", 0.5, 1024)
    # Setting the picker fires no .input: opening says what the advice event would (it depends
    # on the machine, so it is compared, not spelled out).
    assert opened.notice == handlers.advise(MODEL, 1024, ALICE)
    assert opened.export_file == gr.update(visible=False)


def test_opening_nothing_gives_a_blank_chat_with_the_defaults(handlers):
    opened = handlers.open_conversation(None, ALICE)
    assert opened == handlers.new_chat(ALICE)
    assert (opened.conversation_id, opened.history, opened.title) == (None, [], "")
    assert (opened.system_prompt, opened.temperature, opened.num_ctx) == (
        DEFAULT_SYSTEM_PROMPT,
        DEFAULT_TEMPERATURE,
        DEFAULT_NUM_CTX,
    )
    assert opened.model == gr.update()  # the picker keeps the model chosen last


def test_a_poisoned_stored_option_opens_with_its_defaults_and_a_note(services, handlers):
    chat = new_chat(services, "alice", "Poisoned", "Hi", "Hello", model=MODEL)
    poison_options(services, chat, '{"num_ctx": 1e400, "temperature": NaN, "top_p": 5}')
    opened = handlers.open_conversation(chat, ALICE)
    assert (opened.temperature, opened.num_ctx) == (DEFAULT_TEMPERATURE, DEFAULT_NUM_CTX)
    assert len(opened.history) == 2
    assert opened.notice.startswith("ℹ ")
    assert "The stored temperature nan was not valid" in opened.notice
    assert "The stored top p 5 was out of range; using the engine's default." in opened.notice


def test_unreadable_stored_options_open_with_the_defaults_and_a_note(services, handlers):
    chat = new_chat(services, "alice", "Broken", "Hi", model=MODEL)
    poison_options(services, chat, "[1, 2, 3]")
    opened = handlers.open_conversation(chat, ALICE)
    assert (opened.temperature, opened.num_ctx) == (DEFAULT_TEMPERATURE, DEFAULT_NUM_CTX)
    assert "The stored generation settings were not readable" in opened.notice


def test_a_context_length_the_picker_lacks_opens_as_the_largest_offered_below(services, handlers):
    chat = new_chat(services, "alice", "Odd", "Hi", model=MODEL, options={"num_ctx": 3000})
    opened = handlers.open_conversation(chat, ALICE)
    assert opened.num_ctx == 2048
    assert "The stored context length 3000 is not offered here; using 2048." in opened.notice


def test_a_model_the_engine_no_longer_has_is_not_put_in_the_picker_and_is_named(services, handlers):
    chat = new_chat(services, "alice", "Old", "Hi", model="gone:7b")
    opened = handlers.open_conversation(chat, ALICE)
    # A Dropdown is only ever given one of its choices; the stored name goes to the notice.
    assert opened.model["value"] is None and MODEL in opened.model["choices"]
    assert "This chat used the model gone:7b, which is not installed here" in opened.notice


def test_a_hostile_stored_model_name_is_escaped_in_the_notice(services, handlers):
    chat = new_chat(services, "alice", "Old", "Hi", model="<img src=x onerror=alert(1)>")
    opened = handlers.open_conversation(chat, ALICE)
    assert opened.model["value"] is None
    assert "<img" not in opened.notice and "&lt;img" in opened.notice


def test_another_users_chat_does_not_open(services, handlers):
    theirs = new_chat(services, "bob", "Bob's", "secret plans")
    with pytest.raises(StoreError, match=f"Conversation {theirs} was not found"):
        handlers.open_conversation(theirs, ALICE)


def test_picking_a_sidebar_row_opens_that_chat(services, handlers):
    first = new_chat(services, "alice", "First", "a")
    second = new_chat(services, "alice", "Second", "b")
    assert handlers.pick_conversation(1, [second, first], ALICE).title == "First"


# -- the sidebar ---------------------------------------------------------------------------


def test_the_sidebar_lists_only_the_users_chats_newest_first(services, handlers):
    older = new_chat(services, "alice", "Older", "a")
    newer = new_chat(services, "alice", "Newer", "b")
    new_chat(services, "bob", "Bob's", "c")
    page = handlers.list_page(1, newer, ALICE)
    assert isinstance(page, SidebarPage)
    assert (page.ids, page.page, page.label) == ([newer, older], 1, "1 / 1 · 2 chats")
    [first], [second] = page.rows["samples"]
    assert "Newer" in first and "selected" in first  # the open chat is marked
    assert "Older" in second and "selected" not in second


def test_the_pager_moves_between_pages_and_stops_at_the_ends(services, handlers):
    ids = [new_chat(services, "alice", f"Chat {n}", "q") for n in range(PER_PAGE + 1)]
    first = handlers.list_page(1, None, ALICE)
    assert (len(first.ids), first.label) == (PER_PAGE, f"1 / 2 · {PER_PAGE + 1} chats")
    second = handlers.older(first.page, None, ALICE)
    assert (second.ids, second.page) == ([ids[0]], 2)
    assert handlers.older(second.page, None, ALICE).page == 2
    assert handlers.newer(first.page, None, ALICE).page == 1


def test_search_finds_only_the_users_own_messages(services, handlers):
    mine = new_chat(services, "alice", "Mine", "where is the treasure", "under the oak")
    new_chat(services, "bob", "Bob's", "the treasure is mine")
    found = handlers.search("treasure", ALICE)
    assert isinstance(found, SearchResults)
    assert [conversation for conversation, _ in found.refs] == [mine]
    assert found.hits["visible"] is True
    assert found.note == "1 match for “treasure”"


def test_an_empty_search_hides_the_results(handlers):
    found = handlers.search("   ", ALICE)
    assert (found.refs, found.note, found.hits["visible"]) == ([], "", False)


def test_a_search_query_is_echoed_as_text_not_markup(handlers):
    assert "&lt;img" in handlers.search("<img src=x onerror=alert(1)>", ALICE).note


def test_a_search_hit_opens_its_chat_at_its_message(services, handlers):
    chat = new_chat(services, "alice", "Long", "one", "two", "needle here", "four")
    found = handlers.search("needle", ALICE)
    *opened, position = handlers.pick_hit(0, found.refs, ALICE)
    assert OpenedChat(*opened).conversation_id == chat
    assert position == 2


# -- rename, delete, export, import --------------------------------------------------------


def test_rename_changes_the_title_and_refreshes_the_sidebar(services, handlers):
    chat = new_chat(services, "alice", "Before", "q")
    page = handlers.rename(chat, "  After   all ", 1, ALICE)
    assert title_of(services, "alice", chat) == "After all"
    assert "After all" in page.rows["samples"][0][0]


def test_rename_of_another_users_chat_is_refused_and_changes_nothing(services, handlers):
    theirs = new_chat(services, "bob", "Bob's", "q")
    with pytest.raises(StoreError):
        handlers.rename(theirs, "pwned", 1, ALICE)
    assert title_of(services, "bob", theirs) == "Bob's"


def test_rename_without_an_open_chat_says_what_to_do(handlers):
    with pytest.raises(ChatInputError, match=r"Open a chat to rename it\."):
        handlers.rename(None, "Title", 1, ALICE)


def test_delete_removes_the_users_chat_and_shows_a_blank_one(services, handlers):
    chat = new_chat(services, "alice", "Doomed", "q")
    assert handlers.delete(chat, ALICE) == handlers.new_chat(ALICE)
    assert handlers.list_page(1, None, ALICE).ids == []


def test_delete_of_another_users_chat_is_refused_and_keeps_it(services, handlers):
    theirs = new_chat(services, "bob", "Bob's", "q")
    with pytest.raises(StoreError):
        handlers.delete(theirs, ALICE)
    assert title_of(services, "bob", theirs) == "Bob's"


def test_the_delete_confirmation_shows_and_hides(handlers):
    assert handlers.ask_delete() == gr.update(visible=True)
    assert handlers.hide_delete() == gr.update(visible=False)


@pytest.mark.parametrize("kind", ["markdown", "json"])
def test_export_offers_a_file_of_the_chat(services, handlers, kind):
    chat = new_chat(services, "alice", "Exported", "the question", "the answer")
    offered = getattr(handlers, f"export_{kind}")(chat, ALICE)
    assert offered["visible"] is True
    text = Path(offered["value"]).read_text(encoding="utf-8")
    assert "the question" in text and "the answer" in text
    if kind == "json":
        assert json.loads(text)["conversation"]["title"] == "Exported"


def test_export_of_another_users_chat_is_refused(services, handlers):
    theirs = new_chat(services, "bob", "Bob's", "secret")
    with pytest.raises(StoreError):
        handlers.export_json(theirs, ALICE)


def test_export_without_an_open_chat_says_what_to_do(handlers):
    with pytest.raises(ChatInputError, match=r"Open a chat to export it\."):
        handlers.export_markdown(None, ALICE)


def test_import_opens_the_chat_and_deletes_the_upload(services, handlers, tmp_path):
    chat = new_chat(services, "bob", "Shared", "the question", "the answer")
    upload = tmp_path / "upload-1" / "chat.json"
    upload.parent.mkdir()
    upload.write_text(Path(handlers.export_json(chat, BOB)["value"]).read_text("utf-8"))
    opened = handlers.import_file(str(upload), ALICE)
    assert opened.title == "Shared"
    assert [m["content"] for m in opened.history] == ["the question", "the answer"]
    assert handlers.list_page(1, None, ALICE).ids == [opened.conversation_id]
    assert not upload.parent.exists()  # the upload and its folder are gone


def test_a_bad_import_is_refused_and_its_upload_deleted_too(handlers, tmp_path):
    upload = tmp_path / "upload-2" / "chat.json"
    upload.parent.mkdir()
    upload.write_text("{not json")
    with pytest.raises(ValueError):
        handlers.import_file(str(upload), ALICE)
    assert not upload.exists()
    assert handlers.list_page(1, None, ALICE).ids == []


def test_import_without_a_file_says_what_to_do(handlers):
    with pytest.raises(ChatInputError, match=r"Choose a \.json export file to import\."):
        handlers.import_file(None, ALICE)


# -- who may do what -----------------------------------------------------------------------

ANONYMOUS_CALLS = {
    "list_page": lambda h: h.list_page(1, None, ANONYMOUS),
    "new_chat": lambda h: h.new_chat(ANONYMOUS),
    "open_conversation": lambda h: h.open_conversation(1, ANONYMOUS),
    "search": lambda h: h.search("secret", ANONYMOUS),
    "rename": lambda h: h.rename(1, "pwned", 1, ANONYMOUS),
    "delete": lambda h: h.delete(1, ANONYMOUS),
    "export_json": lambda h: h.export_json(1, ANONYMOUS),
    "import_file": lambda h: h.import_file("/nonexistent/chat.json", ANONYMOUS),
    "advise": lambda h: h.advise(MODEL, 2048, ANONYMOUS),
}


@pytest.mark.parametrize("call", ANONYMOUS_CALLS.values(), ids=ANONYMOUS_CALLS.keys())
def test_an_anonymous_request_is_refused(services, handlers, call):
    new_chat(services, "alice", "Alice's", "secret")
    with pytest.raises(PermissionDenied, match=r"Sign in first\."):
        call(handlers)
    assert title_of(services, "alice", 1) == "Alice's"


def test_an_anonymous_turn_is_refused_in_the_notice(handlers):
    chat, box, conversation, notice, *sidebar = list(
        handlers.send("hi", None, [], MODEL, "", 0.3, 2048, 8, 1, ANONYMOUS)
    )[-1]
    assert (conversation, notice) == (None, "⚠ Sign in first.")
    assert chat == box == gr.skip()  # the question stays in the box, the chat as it was
    assert sidebar == [gr.skip()] * 4  # nothing was saved: the sidebar stays as it was


def test_the_tab_opens_empty_for_an_anonymous_request(services, handlers):
    new_chat(services, "alice", "Alice's", "secret")
    picker, rows, ids, page, label, notice = handlers.tab_load(ANONYMOUS)
    assert (picker, rows, ids, page, label, notice) == (
        gr.update(choices=[]),
        gr.update(samples=[]),
        [],
        1,
        "",
        "",
    )


def test_the_tab_opens_with_the_engines_models_the_first_page_and_its_advice(services, handlers):
    chat = new_chat(services, "alice", "Alice's", "q")
    picker, _, ids, page, _, notice = handlers.tab_load(ALICE)
    assert MODEL in picker["choices"] and picker["value"] == picker["choices"][0]
    assert (ids, page) == ([chat], 1)
    # Setting the picker fires no .input: the load says what the advice event would (the
    # numbers aside: free memory moves between the two calls on a busy machine).
    advice = handlers.advise(picker["value"], DEFAULT_NUM_CTX, ALICE)
    assert re.sub(r"\d[\d.,]*", "#", notice) == re.sub(r"\d[\d.,]*", "#", advice)


# -- turns and Stop ------------------------------------------------------------------------


def test_stop_sets_the_flag_of_that_page_session_only(handlers, running):
    with running.running(TAB) as mine, running.running(OTHER_TAB) as other:
        handlers.stop(StubRequest("alice", OTHER_TAB))
        assert (mine.is_set(), other.is_set()) == (False, True)
        handlers.stop(StubRequest("alice", TAB))
        assert mine.is_set()


def test_stop_without_a_turn_in_flight_does_nothing(handlers, running):
    handlers.stop(ALICE)
    with running.running(TAB) as flag:
        assert not flag.is_set()


def test_an_older_turn_ending_leaves_stop_to_the_newer_one_of_its_session(handlers, running):
    older = running.running(TAB)
    older.__enter__()
    with running.running(TAB) as newer:
        older.__exit__(None, None, None)
        handlers.stop(ALICE)
        assert newer.is_set()


def stored_replies(services: Services, conversation_id: int) -> list[str]:
    messages = services.store.messages(user_id(services, "alice"), conversation_id)
    return [m.status for m in messages if m.role == "assistant"]


@pytest.mark.parametrize(("stopped_from", "status"), [(TAB, "stopped"), (OTHER_TAB, "complete")])
def test_stop_ends_the_turn_of_its_own_session(services, handlers, stopped_from, status):
    turn = handlers.send("Say hello.", None, [], MODEL, "", 0.0, 2048, 8, 1, ALICE)
    _, box, conversation, *_ = next(turn)  # the question is saved; no token yet
    assert box == ""
    handlers.stop(StubRequest("alice", stopped_from))
    list(turn)
    assert stored_replies(services, conversation) == [status]


def test_editing_an_earlier_question_is_refused_and_the_chat_kept(handlers):
    history = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "two"},
    ]
    edit = SimpleNamespace(index=0, value="changed")
    [update] = handlers.edit(7, history, MODEL, "", 0.3, 2048, 0, 1, edit, ALICE)
    assert update[0] == history and update[2] == 7


def test_advice_is_empty_without_a_model_and_no_refusal_for_the_bundled_one(handlers):
    assert handlers.advise("", 2048, ALICE) == ""
    assert not handlers.advise(MODEL, 2048, ALICE).startswith("✖")  # 135M fits any test box


def test_advice_names_a_context_length_out_of_range(handlers):
    with pytest.raises(ChatInputError, match="Context length"):
        handlers.advise(MODEL, 10**9, ALICE)


# -- wiring: what each handler returns goes to the right components -------------------------


def test_each_handler_returns_one_value_per_wired_output():
    with gr.Blocks():
        components = layout()
    assert len(wiring.open_outputs(components)) == len(OpenedChat._fields)
    assert len(wiring.sidebar_outputs(components)) == len(SidebarPage._fields)
    assert wiring.turn_outputs(components)[4:] == wiring.sidebar_outputs(components)
    assert len(wiring.turn_inputs(components)) == 9  # send's and regenerate's, request aside
    assert wiring.open_outputs(components)[1] is components.talk.chatbot
    assert wiring.sidebar_outputs(components)[0] is components.sidebar.conv_list


# -- what a script may send where a click sends a row or an edit ---------------------------

NOT_A_ROW = {"-1": -1, "past the end": 1, "10**30": 10**30, "True": True, "2.5": 2.5,
             '"0"': "0", "inf": float("inf"), "None": None, "list": [0],
             "dict": {"a": 1}}  # fmt: skip


@pytest.mark.parametrize("index", NOT_A_ROW.values(), ids=NOT_A_ROW.keys())
def test_a_sidebar_row_the_page_was_not_shown_is_refused_with_a_sentence(services, handlers, index):
    chat = new_chat(services, "alice", "Mine", "q")
    with pytest.raises(ChatInputError, match=r"^Pick a chat from the list; (the|there is no) row"):
        handlers.pick_conversation(index, [chat], ALICE)


@pytest.mark.parametrize("index", NOT_A_ROW.values(), ids=NOT_A_ROW.keys())
def test_a_search_hit_the_page_was_not_shown_is_refused_with_a_sentence(services, handlers, index):
    new_chat(services, "alice", "Mine", "needle")
    refs = handlers.search("needle", ALICE).refs
    with pytest.raises(ChatInputError, match=r"^Pick a search result from the list; "):
        handlers.pick_hit(index, refs, ALICE)


@pytest.mark.parametrize("rows", [None, "abc", {"a": 1}, [], ["../../etc/passwd"], [True]])
def test_rows_that_hold_no_chat_are_refused_with_a_sentence(handlers, rows):
    with pytest.raises(ChatInputError, match=r"^Pick a chat from the list; "):
        handlers.pick_conversation(0, rows, ALICE)
    with pytest.raises(ChatInputError, match=r"^Pick a search result from the list; "):
        handlers.pick_hit(0, rows, ALICE)


def test_picking_a_row_needs_a_signed_in_user_first(services, handlers):
    chat = new_chat(services, "alice", "Mine", "q")
    with pytest.raises(PermissionDenied, match=r"Sign in first\."):
        handlers.pick_conversation("abc", [chat], ANONYMOUS)


@pytest.mark.parametrize("data", [None, [1, 2], "abc", {"index": "2"}, {"index": 2.0}, {}])
def test_edit_data_that_is_no_edit_of_the_last_question_changes_nothing(handlers, data):
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "one"}]
    [update] = handlers.edit(7, history, MODEL, "", 0.3, 2048, 0, 1, EditEvent(None, data), ALICE)
    assert update[0] == history and update[2] == 7


@pytest.mark.parametrize(
    ("value", "message"),
    [([1, 2], r"The search must be text; got a list of 2 item\(s\)\."),
     ("x" * 1_000_001, r"The search is 1,000,001 characters long"),
     ("a\x00b", r"The search contains a NUL character")],
)  # fmt: skip
def test_a_search_that_is_not_text_is_refused_with_a_sentence(handlers, value, message):
    with pytest.raises(ChatInputError, match=message):
        handlers.search(value, ALICE)


def test_a_search_of_nothing_finds_nothing(handlers):
    assert handlers.search(None, ALICE).refs == []


@pytest.mark.parametrize(
    ("title", "message"),
    [(None, r"A title cannot be empty\."), ({"a": 1}, r"The title must be text"),
     ("\ud800", r"The title contains an invalid character")],
)  # fmt: skip
def test_a_title_that_is_not_text_is_refused_and_the_title_kept(services, handlers, title, message):
    chat = new_chat(services, "alice", "Before", "q")
    with pytest.raises(ValueError, match=message):
        handlers.rename(chat, title, 1, ALICE)
    assert title_of(services, "alice", chat) == "Before"


def test_a_waiting_turn_sends_the_question_once_then_only_its_place() -> None:
    """Each later place-in-line update leaves the chat and the box as they are: with many
    people waiting, each such update is cheap for the server and the page."""
    from ui.chat.turns import _TurnView

    view = _TurnView([{"role": "user", "content": "hello"}], None, 2048)
    first = view.update(TurnWaiting(2, 1, 8.0))
    assert first[0] == [{"role": "user", "content": "hello"}] and "2nd in line" in first[3]
    later = view.update(TurnWaiting(1, 0, 4.0))
    assert "1st in line" in later[3]
    skipped = [i for i, value in enumerate(later) if isinstance(value, dict) and value == gr.skip()]
    assert skipped == [0, 1, 2]
    same = view.update(TurnWaiting(1, 0, 4.0))  # the same place and wait: nothing to send
    assert all(isinstance(value, dict) and value == gr.skip() for value in same)


def test_a_streaming_turn_sends_what_changed_and_keeps_a_draft_typed_meanwhile() -> None:
    """The conversation id goes when the turn starts, the notice when it changes; the box is
    emptied once, so a next question typed meanwhile stays. Send and Stop are the page's."""
    from backend.chat.turns import TurnFinished, TurnStarted
    from backend.services import ChatDelta, Message
    from ui.chat.turns import _TurnView

    conversation = SimpleNamespace(id=7)
    reply = Message(2, 7, "assistant", "Hi there", "smollm2:135m", "2026-11-30T16:00:00Z")
    view = _TurnView([{"role": "user", "content": "hello"}], None, 2048)
    first = view.update(TurnStarted(conversation, None, 0, ""))  # type: ignore[arg-type]
    assert (first[1], first[2], len(first)) == ("", 7, 4)
    middle = view.update(ChatDelta("Hi"))
    assert middle[0][-1]["content"] == "Hi"
    assert [middle[i] == gr.skip() for i in (1, 2, 3)] == [True] * 3  # the notice too
    last = view.update(TurnFinished(reply))  # type: ignore[arg-type]
    assert (last[1], last[2], last[3]) == (gr.skip(), 7, "")
    assert not any(isinstance(value, gr.Button) for value in (*first, *middle, *last))


def test_a_turn_brings_the_sidebar_with_its_new_chat_when_the_reply_ends(services, handlers):
    """No second event per turn: the page of chats comes with the turn's last update."""
    older = new_chat(services, "alice", "Older", "q")
    updates = list(handlers.send("Say hello.", None, [], MODEL, "", 0.0, 2048, 4, 1, ALICE))
    refreshed = [update for update in updates if update[4] != gr.skip()]
    assert refreshed == [updates[-1]]
    rows, ids, page, label = updates[-1][4:]
    assert (ids, page, label) == ([updates[-1][2], older], 1, "1 / 1 · 2 chats")
    assert "conv-card selected" in rows["samples"][0][0] and "2 messages" in rows["samples"][0][0]


def test_a_turn_to_an_open_chat_brings_the_sidebar_once_when_the_reply_ends(services, handlers):
    chat = new_chat(services, "alice", "Mine", "q")
    updates = list(handlers.send("Again?", chat, [], MODEL, "", 0.0, 2048, 4, "x", ALICE))
    refreshed = [update for update in updates if update[4] != gr.skip()]
    assert [update[5:7] for update in refreshed] == [([chat], 1)]  # a bad page shows the first
