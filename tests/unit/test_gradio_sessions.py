"""Page sessions keep no config copies nor the values shown; what Gradio's handlers read of a
session (its State values, the components a handler changed) is the same as with its own."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import gradio as gr
import gradio.routes
import pytest
from gradio import state_holder
from gradio.state_holder import SessionState

from backend.services import Services
from backend.settings import Settings
from bench.sessions import measure
from tests.support.asyncio_run import run_coroutine
from ui import build_ui
from ui.gradio_sessions import LazySessionState, SweptStateHolder, use_lazy_session_configs


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gr.Blocks]:
    services = Services.build(Settings(data_dir=tmp_path_factory.mktemp("s"), engine="embedded"))
    try:
        yield build_ui(services)
    finally:
        services.close()


def test_a_page_session_holds_a_few_objects_not_a_copy_of_the_ui(demo: gr.Blocks) -> None:
    """Measured as bench.sessions does, over 20 tabs of each kind, each with a value in every
    gr.State (no timing is asserted); Gradio's own session kind is put back after."""
    switched = state_holder.SessionState
    gradio, hearth = measure(demo, "gradio", 20), measure(demo, "hearth", 20)
    assert state_holder.SessionState is switched
    assert gradio["objects_per_tab"] > 500  # Gradio's own: a copy of every component's config
    assert hearth["objects_per_tab"] < 50
    assert gradio["references_per_tab"] > 2 * len(demo.blocks)  # and of the components dict
    assert hearth["references_per_tab"] < 100
    assert all(value >= 0 for value in [*gradio.values(), *hearth.values()])


def test_a_session_shares_the_uis_components_until_a_handler_changes_one(
    demo: gr.Blocks,
) -> None:
    first, second = LazySessionState(demo), LazySessionState(demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    rows = send.outputs[4]  # the sidebar's chats, a gr.Dataset
    assert first[rows._id] is rows is second[rows._id]
    with pytest.raises(TypeError):  # shared read-only: no write can reach the other tabs
        first.blocks_config.blocks[rows._id] = None  # type: ignore[index]
    changed = gr.Dataset(components=["html"], samples=[["mine"]], render=False)
    first[rows._id] = changed  # what Gradio does with a handler's gr.update(samples=...)
    assert first[rows._id] is changed
    assert second[rows._id] is rows and demo.default_config.blocks[rows._id] is rows
    assert rows._id in first and len(first.blocks_config.blocks) == len(demo.blocks)
    assert first.blocks_config.fns[send._id] is send is second.blocks_config.fns[send._id]


def _updated(make: type[SessionState], demo: gr.Blocks) -> SessionState:
    """A session after what a chat turn does to it: values, the sidebar's chats, a skip."""
    state = make(demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    predictions = [[{"role": "user", "content": "hi"}], "", 1, "ⓘ note",
                   gr.update(samples=[["<b>hi</b>"]]), [1], 1, gr.skip()]  # fmt: skip
    run_coroutine(demo.postprocess_data(send, predictions, state))
    return state


def test_what_handlers_read_of_a_session_is_the_same_as_with_gradios_own(
    demo: gr.Blocks,
) -> None:
    eager, lazy = _updated(SessionState, demo), _updated(LazySessionState, demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    _, _, conversation, _, rows, *_ = send.outputs
    assert lazy[rows._id].samples == eager[rows._id].samples == [["<b>hi</b>"]]
    assert lazy[conversation._id] == eager[conversation._id] == 1  # gr.State values
    assert lazy.config_values == {}  # no copies kept, of configs or of the values shown


def test_the_deep_link_list_has_gradios_components_but_no_chat_text(demo: gr.Blocks) -> None:
    """Gradio's deep-link route writes a session's components to a file: here they come as
    configured (the sidebar's new chats), with none of the values the page showed."""
    eager, lazy = _updated(SessionState, demo), _updated(LazySessionState, demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    chatbot, _, _, _, rows, *_ = send.outputs
    components = list(lazy.components)
    assert [c["id"] for c in components] == [c["id"] for c in eager.components]
    configs = {c["id"]: c for c in components}
    assert configs[rows._id]["props"]["samples"] == [["<b>hi</b>"]]
    assert "hi" in str({c["id"]: c for c in eager.components}[chatbot._id]["props"]["value"])
    assert "hi" not in str(configs[chatbot._id]["props"].get("value"))


def test_gradios_session_store_makes_lazy_sessions_once_switched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_holder, "SessionState", SessionState)
    monkeypatch.setattr(gradio.routes, "StateHolder", state_holder.StateHolder)
    assert use_lazy_session_configs() is True
    assert use_lazy_session_configs() is False
    holder = gradio.routes.App().state_holder  # what launch() makes
    assert isinstance(holder, SweptStateHolder)
    holder.blocks = gr.Blocks()
    assert isinstance(holder["a-page"], LazySessionState)


def _holder_with_a_state() -> tuple[SweptStateHolder, gr.State, list[object]]:
    deleted: list[object] = []
    with gr.Blocks() as blocks:
        kept = gr.State(delete_callback=deleted.append)
    holder = SweptStateHolder()
    holder.blocks = blocks
    return holder, kept, deleted


def test_a_closed_tabs_session_is_dropped_an_hour_after_its_last_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_holder, "SessionState", LazySessionState)
    holder, kept, deleted = _holder_with_a_state()
    now = datetime.datetime.now()
    for session_id, closed, idle_min in [("open", False, 120), ("closed-recent", True, 10),
                                         ("closed-old", True, 61)]:  # fmt: skip
        session = holder[session_id]
        session[kept._id] = f"value of {session_id}"
        session.is_closed = closed
        holder.time_last_used[session_id] = now - datetime.timedelta(minutes=idle_min)
    assert holder.drop_closed_sessions(now) == ["closed-old"]
    assert list(holder.session_data) == ["open", "closed-recent"]
    assert "closed-old" not in holder.time_last_used
    assert deleted == ["value of closed-old"]  # handed to its delete callback, as on expiry
    assert holder.drop_closed_sessions(now) == []
    assert holder["open"][kept._id] == "value of open"  # an idle open tab keeps its values


def test_only_sessions_whose_values_can_expire_are_walked_every_second() -> None:
    holder, kept, _ = _holder_with_a_state()
    with holder.blocks:
        short = gr.State(time_to_live=5)
    open_tab, short_lived = LazySessionState(holder.blocks), LazySessionState(holder.blocks)
    open_tab[kept._id] = "never expires while the tab is open"
    short_lived[short._id] = "expires in 5 s"
    assert list(open_tab.state_components) == []
    assert [block for block, _, _ in short_lived.state_components] == [short]
    open_tab.is_closed = True  # Gradio's hour for a closed tab's values applies
    assert [(block, expired) for block, _, expired in open_tab.state_components] == [(kept, False)]


def _tracked_both_ways(demo: gr.Blocks, make_state) -> None:
    """For every event of `demo`, Hearth's answer on a lazy session is Gradio's own on an
    eager one, both holding the same values."""
    eager, lazy = SessionState(demo), LazySessionState(demo)
    for state in (eager, lazy):
        make_state(state)
    for fn in demo.fns.values():
        expected = gr.Blocks.get_state_ids_to_track(demo, fn, eager)
        assert demo.get_state_ids_to_track(fn, lazy) == expected, fn.api_name


def test_the_states_a_change_listener_watches_are_gradios_own(demo: gr.Blocks) -> None:
    """Hearth's UI, and a small one whose State has a .change listener (so some are tracked)."""
    _tracked_both_ways(demo, lambda state: None)
    from ui.errors import HearthBlocks

    with HearthBlocks() as small:
        count, other = gr.State(1), gr.State("x")
        shown = gr.Number()
        button = gr.Button()
        button.click(lambda n: (n + 1, "y"), count, [count, other], api_name="bump")
        count.change(lambda n: n, count, shown)

    def fill(state: SessionState) -> None:
        state[count._id], state[other._id] = 5, "z"

    _tracked_both_ways(small, fill)
    bump = next(fn for fn in small.fns.values() if fn.api_name == "bump")
    lazy = LazySessionState(small)
    fill(lazy)
    ids, hashes = small.get_state_ids_to_track(bump, lazy)
    assert ids == [count._id] and len(hashes) == 1  # watched; `other` has no listener
