"""Page sessions keep no config copies nor the values shown; what Gradio's handlers read of a
session (its State values, the components a handler changed) is the same as with its own."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import gradio as gr
import pytest
from gradio import state_holder
from gradio.state_holder import SessionState

from backend.services import Services
from backend.settings import Settings
from tests.support.asyncio_run import run_coroutine
from ui import build_ui
from ui.gradio_sessions import LazySessionState, use_lazy_session_configs


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gr.Blocks]:
    services = Services.build(Settings(data_dir=tmp_path_factory.mktemp("s"), engine="embedded"))
    try:
        yield build_ui(services)
    finally:
        services.close()


def _objects_per_session(make: type[SessionState], demo: gr.Blocks) -> float:
    gc.collect()
    before = len(gc.get_objects())
    sessions = [make(demo) for _ in range(20)]
    gc.collect()
    after = len(gc.get_objects())
    assert len(sessions) == 20
    return (after - before) / 20


def test_a_new_page_session_holds_a_few_objects_not_a_copy_of_the_ui(demo: gr.Blocks) -> None:
    eager = _objects_per_session(SessionState, demo)
    lazy = _objects_per_session(LazySessionState, demo)
    assert eager > 500  # Gradio's own: a copy of every component's config
    assert lazy < 50


def _updated(make: type[SessionState], demo: gr.Blocks) -> SessionState:
    """A session after what a chat turn does to it: a value, a button shown, a skip."""
    state = make(demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    predictions = [[{"role": "user", "content": "hi"}], "", 1, "ⓘ note",
                   gr.Button(visible=False), gr.Button(visible=True), *[gr.skip()] * 4]  # fmt: skip
    run_coroutine(demo.postprocess_data(send, predictions, state))
    return state


def test_what_handlers_read_of_a_session_is_the_same_as_with_gradios_own(
    demo: gr.Blocks,
) -> None:
    eager, lazy = _updated(SessionState, demo), _updated(LazySessionState, demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    _, _, conversation, _, _, stop_btn, *_ = send.outputs
    assert lazy[stop_btn._id].visible is True and eager[stop_btn._id].visible is True
    assert lazy[conversation._id] == eager[conversation._id] == 1  # gr.State values
    assert lazy.config_values == {}  # no copies kept, of configs or of the values shown


def test_the_deep_link_list_has_gradios_components_but_no_chat_text(demo: gr.Blocks) -> None:
    """Gradio's deep-link route writes a session's components to a file: here they come as
    configured (the Stop button shown), with none of the values the page showed."""
    eager, lazy = _updated(SessionState, demo), _updated(LazySessionState, demo)
    send = next(fn for fn in demo.fns.values() if fn.api_name == "chat_send")
    chatbot, _, _, _, _, stop_btn, *_ = send.outputs
    components = list(lazy.components)
    assert [c["id"] for c in components] == [c["id"] for c in eager.components]
    configs = {c["id"]: c for c in components}
    assert configs[stop_btn._id]["props"]["visible"] is True
    assert "hi" in str({c["id"]: c for c in eager.components}[chatbot._id]["props"]["value"])
    assert "hi" not in str(configs[chatbot._id]["props"].get("value"))


def test_gradios_session_store_makes_lazy_sessions_once_switched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_holder, "SessionState", SessionState)
    assert use_lazy_session_configs() is True
    assert use_lazy_session_configs() is False
    holder = state_holder.StateHolder()
    holder.blocks = gr.Blocks()
    assert isinstance(holder["a-page"], LazySessionState)
