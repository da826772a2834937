"""No raw exceptions: every handler is wrapped, and what the wrapper shows is a sentence."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from gradio.state_holder import SessionState  # Gradio's own, whatever app.py switches
from starlette.requests import Request

from backend.auth import PermissionDenied
from backend.services import Services
from backend.settings import Settings
from backend.store.values import check_choice
from tests.support.asyncio_run import run_coroutine
from ui import build_ui
from ui.common import GUARDED, guarded, user_error
from ui.errors import (
    MAX_INPUT_DEPTH,
    HearthBlocks,
    InputRefused,
    check_input,
    http_server_error,
    shorten,
)

REFERENCE = re.compile(
    r"Something went wrong on the server \(ref ([0-9a-f]{6})\); it has been logged\."
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gr.Blocks]:
    data_dir: Path = tmp_path_factory.mktemp("ui-errors")
    services = Services.build(Settings(data_dir=data_dir, engine="embedded"))
    try:
        yield build_ui(services)
    finally:
        services.close()


def test_every_event_handler_of_the_built_ui_is_guarded(demo: gr.Blocks) -> None:
    handlers = [block_fn for block_fn in demo.fns.values() if block_fn.fn is not None]
    bare = [block_fn.api_name or block_fn.name for block_fn in handlers]
    bare = [name for name, fn in zip(bare, handlers, strict=True) if not getattr(fn.fn, GUARDED, 0)]
    assert len(handlers) > 40  # the walk sees the whole UI: every tab, loads, the timer, /chat
    assert not bare, f"wrap these handlers with ui.common.guarded: {bare}"


def test_the_built_ui_reads_values_through_hearth_blocks(demo: gr.Blocks) -> None:
    assert isinstance(demo, HearthBlocks)


def _boom_index() -> int:
    return int("abc")


def test_a_python_error_becomes_a_logged_reference(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hearth.ui"), pytest.raises(gr.Error) as raised:
        guarded(_boom_index)()
    shown = REFERENCE.fullmatch(raised.value.message)
    assert shown, raised.value.message
    assert "invalid literal" not in raised.value.message
    record = next(r for r in caplog.records if shown.group(1) in r.getMessage())
    assert record.exc_info and "invalid literal" in str(record.exc_info[1])
    assert "_boom_index" in record.getMessage()


def test_a_sentence_our_code_raises_is_shown_escaped() -> None:
    # A plain ValueError, raised by a `raise` in backend/: its words are ours.
    with pytest.raises(gr.Error) as raised:
        guarded(check_choice)("role", "<b>boss</b>", ("admin", "staff"))
    assert raised.value.message == (
        "role must be one of admin, staff, got &#x27;&lt;b&gt;boss&lt;/b&gt;&#x27;."
    )


def test_the_same_sentence_raised_outside_our_packages_is_not_trusted() -> None:
    def pick() -> None:
        raise ValueError("Pick a user first.")

    with pytest.raises(gr.Error) as raised:
        guarded(pick)()
    assert REFERENCE.fullmatch(raised.value.message)


def test_our_own_error_classes_keep_their_sentence_even_when_re_raised() -> None:
    def refuse() -> None:
        try:
            raise PermissionDenied("Only an admin may do that.")
        except PermissionDenied as exc:
            raise exc from None

    with pytest.raises(gr.Error) as raised:
        guarded(refuse)()
    assert raised.value.message == "Only an admin may do that."


@pytest.mark.parametrize(
    "fails",
    [
        lambda: "\ud800".encode(),  # UnicodeEncodeError is a ValueError, in Python's words
        lambda: float("NaN-ish"),
        lambda: Path("/nonexistent/hearth/x").read_text(),  # an OSError naming a server path
        lambda: [][1],
        lambda: {}["key"],
    ],
    ids=["codec", "float", "path", "index", "key"],
)
def test_python_errors_of_user_error_types_or_not_show_only_a_reference(fails) -> None:
    with pytest.raises(gr.Error) as raised:
        guarded(fails)()
    assert REFERENCE.fullmatch(raised.value.message), raised.value.message


def test_user_error_refuses_to_echo_pythons_words() -> None:
    try:
        int("NaN")
    except ValueError as exc:
        assert REFERENCE.fullmatch(user_error(exc).message)


def test_a_generator_is_guarded_after_it_has_streamed() -> None:
    @guarded
    def stream():
        yield "first"
        raise KeyError("history")

    got = stream()
    assert next(got) == "first"
    with pytest.raises(gr.Error) as raised:
        next(got)
    assert REFERENCE.fullmatch(raised.value.message)


def test_gradio_errors_pass_through_unchanged_and_wrapping_twice_is_once() -> None:
    @guarded
    def warn() -> None:
        raise gr.Error("Already a sentence.")

    assert guarded(warn) is warn
    with pytest.raises(gr.Error) as raised:
        warn()
    assert raised.value.message == "Already a sentence."


def test_async_handlers_are_refused_at_wiring_time() -> None:
    async def later() -> None:
        return None

    with pytest.raises(TypeError):
        guarded(later)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (["ok", {"k": "bad \ud800 text"}], "U+D800, a lone surrogate, at position 4"),
        ({"\udfff": 1}, "U+DFFF"),
        ([[0]], None),
        ("plain text, <img src=x onerror=alert(1)>, NUL \x00", None),
    ],
)
def test_check_input_refuses_lone_surrogates_anywhere(value, words) -> None:
    if words is None:
        check_input(value)
        return
    with pytest.raises(InputRefused, match=re.escape(words)):
        check_input(value)


def test_check_input_refuses_absurd_nesting_but_not_a_chat_history() -> None:
    history = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    check_input([history])
    deep: list = []
    for _ in range(MAX_INPUT_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InputRefused, match=f"more than {MAX_INPUT_DEPTH} levels"):
        check_input(deep)


def test_shorten_cuts_only_absurdly_long_words() -> None:
    assert shorten("Pick a user first.") == "Pick a user first."
    cut = shorten(f"There is no user named '{'x' * 5000}'.")
    assert cut.startswith("There is no user named 'xxx") and "(5,003 characters)" in cut
    assert len(cut) < 120


def test_a_sentence_that_echoes_a_huge_value_is_cut() -> None:
    with pytest.raises(gr.Error) as raised:
        guarded(check_choice)("role", "y" * 1_000_000, ("admin", "staff"))
    assert len(raised.value.message) < 200 and "(1,000,003 characters)" in raised.value.message


@pytest.fixture(scope="module")
def small_page() -> gr.Blocks:
    with HearthBlocks() as page:
        pick = gr.Dropdown(["a", "b"], value="a")
        chat = gr.Chatbot()
        out = gr.Textbox()
        pick.change(guarded(lambda value: value), pick, out)
        chat.change(guarded(lambda history: str(len(history))), chat, out)
    return page


def _preprocess(page: gr.Blocks, index: int, value: object) -> gr.Error:
    with pytest.raises(gr.Error) as raised:
        run_coroutine(page.preprocess_data(page.fns[index], [value], None))
    return raised.value


def test_gradios_own_refusal_is_escaped_and_cut(small_page: gr.Blocks) -> None:
    message = _preprocess(small_page, 0, "<img src=x onerror=alert(1)>" + "z" * 5000).message
    assert "&lt;img" in message and "<img" not in message
    assert "is not in the list of choices" in message and len(message) < 300


def test_a_value_no_component_can_read_is_refused_with_a_sentence(small_page: gr.Blocks) -> None:
    refused = _preprocess(small_page, 1, "not a list of messages")
    assert isinstance(refused, InputRefused)
    assert refused.message.startswith("A value sent with this request could not be read")
    assert "validation error" not in refused.message


def test_lone_surrogates_are_refused_before_gradio_reads_them(small_page: gr.Blocks) -> None:
    assert "lone surrogate" in _preprocess(small_page, 0, "\ud800").message


def test_a_failed_request_outside_any_event_answers_json_with_a_reference() -> None:
    request = Request({"type": "http", "method": "POST", "path": "/gradio_api/queue/join",
                       "headers": [], "query_string": b""})  # fmt: skip
    response = run_coroutine(http_server_error(request, KeyError(-1)))
    assert response.status_code == 500
    assert REFERENCE.fullmatch(json.loads(response.body)["detail"])


# -- gr.skip() passes through without a rebuild ----------------------------------------------


def _skip_page(cls: type[gr.Blocks]) -> tuple[gr.Blocks, list[gr.components.Component]]:
    with cls() as page:
        outputs = [gr.Chatbot(), gr.Textbox("typed"), gr.Button("Send"), gr.State(7)]
        outputs[1].submit(guarded(lambda text: text), outputs[1], outputs)
    return page, outputs


def _postprocess(cls: type[gr.Blocks], predictions: object) -> tuple[list, list, list, list]:
    """What postprocess writes for these predictions; each output's config in the session
    before and after; whether the session still holds each output's component object."""
    page, outputs = _skip_page(cls)
    state = SessionState(page)

    def props() -> list:
        return [copy.deepcopy(state.config_values.get(b._id, {}).get("props")) for b in outputs]

    held_before, props_before = [state.get(block._id, block) for block in outputs], props()
    written = run_coroutine(page.postprocess_data(page.fns[0], predictions, state))
    held = [state.get(b._id, b) is before for b, before in zip(outputs, held_before, strict=True)]
    return written, props_before, props(), held


MIXED = [[{"role": "user", "content": "hi"}], gr.skip(), gr.Button(visible=False), gr.skip()]


def test_skips_write_what_gradio_writes() -> None:
    written, before, after, _ = _postprocess(HearthBlocks, MIXED)
    gradio_written, _, gradio_after, _ = _postprocess(gr.Blocks, MIXED)
    assert written == gradio_written  # the same data goes to the page
    assert written[1] == {"__type__": "update"}
    assert [after[i] for i in (0, 2)] == [gradio_after[i] for i in (0, 2)]
    # The skipped box keeps its config, value included (Gradio's rebuild drops the value).
    assert after[1] == before[1] and after[1]["value"] == "typed"
    assert "value" not in gradio_after[1]


def test_a_skipped_output_keeps_its_component_and_a_real_update_still_rebuilds() -> None:
    *_, held = _postprocess(HearthBlocks, MIXED)
    assert held[1] is True  # the skipped Textbox: not built anew
    assert held[2] is False  # Button(visible=False) is a real update: Gradio's path
    *_, gradio_held = _postprocess(gr.Blocks, MIXED)
    assert gradio_held[1] is False  # Gradio's own path rebuilds even for a skip


def test_one_skip_for_every_output_writes_a_skip_to_each_but_state() -> None:
    written, *_, held = _postprocess(HearthBlocks, gr.skip())
    assert written[:3] == [{"__type__": "update"}] * 3 and written[3] is None
    assert held[:3] == [True, True, True]
    assert written == _postprocess(gr.Blocks, gr.skip())[0]


def test_predictions_of_the_wrong_length_still_get_gradios_own_error() -> None:
    page, _ = _skip_page(HearthBlocks)
    with pytest.raises(ValueError, match=r"didn.t return enough output values"):
        run_coroutine(page.postprocess_data(page.fns[0], [gr.skip(), gr.skip()], None))
