"""The fair line in real Chromium: places in line, fairness between people, Stop while waiting.

The real app runs on OllamaEngine (one slot) against the Ollama protocol test server, whose
tokens come from a ScriptedEngine with a gate: while the gate is closed the first turn holds
the only slot, so who waits where is decided by Hearth's line alone, not by how fast this
machine's CPU writes tokens.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator

import pytest

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.browser import signed_in_page
from tests.support.fakes import ScriptedEngine
from tests.support.gradio_http import GradioHTTP
from tests.support.ollama_server import BUNDLED_NAME, OllamaTestServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine() -> ScriptedEngine:
    return ScriptedEngine(models=(BUNDLED_NAME,), gate=threading.Event(),
                          default_reply="A reply that waited its turn.")  # fmt: skip


@pytest.fixture(scope="module")
def line_app(tmp_path_factory, engine, smollm_path) -> Iterator[AppProcess]:
    data_dir = tmp_path_factory.mktemp("line-app")
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
        UserAdmin(store).add_user(CLI, "staff", STAFF_PASSWORD, "staff")
    with (
        OllamaTestServer(engine, smollm_path) as server,
        AppProcess(
            data_dir,
            engine="ollama",
            ollama_host=server.url,
            extra_env={"HEARTH_ENGINE_SLOTS": "1", "HEARTH_MAX_WAITING": "2"},
        ) as app,
    ):
        yield app
    engine.gate.set()


@pytest.fixture
def pages(browser, line_app, engine):
    engine.gate.clear()
    opened = {
        "admin": signed_in_page(browser, line_app.url, "admin", ADMIN_PASSWORD),
        "admin, 2nd tab": signed_in_page(browser, line_app.url, "admin", ADMIN_PASSWORD),
        "staff": signed_in_page(browser, line_app.url, "staff", STAFF_PASSWORD),
    }
    yield opened
    engine.gate.set()
    for page in opened.values():
        page.context.close()


def _ask(page, text: str) -> None:
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")


def _notice(page, text: str) -> None:
    page.locator("#chat-notice", has_text=text).wait_for(timeout=30_000)


def _hold_the_slot(page, engine: ScriptedEngine, text: str) -> None:
    """Send a turn that takes the only slot and stays there while the gate is closed."""
    before = len(engine.requests)
    _ask(page, text)
    page.locator("#stop").wait_for(state="visible")
    assert engine.wait_for_requests(before + 1), "the first turn never reached the engine"


def test_a_second_tab_waits_behind_another_persons_first_then_gets_its_reply(
    pages, engine, line_app
):
    first, second, other = pages["admin"], pages["admin, 2nd tab"], pages["staff"]
    _hold_the_slot(first, engine, "the first question")
    _ask(second, "the admin's second question")
    _notice(second, "1st in line · about")
    _ask(other, "the staff question")
    _notice(other, "1st in line · about")  # staff's first goes ahead of admin's second ...
    _notice(second, "2nd in line · about")  # ... which now sees its new place
    assert second.locator("#stop").is_visible(), "Stop is offered while waiting"

    engine.gate.set()
    for page in (first, other, second):
        page.locator("#chatbot .reply-stats").last.wait_for(timeout=30_000)
    assert engine.asked()[-3:] == [
        "the first question", "the staff question", "the admin's second question"
    ]  # fmt: skip
    assert "in line" not in second.locator("#chat-notice").inner_text()
    assert (
        "A reply that waited its turn." in second.locator("#chatbot .message.bot").last.inner_text()
    )


def test_stop_while_waiting_leaves_the_line_and_saves_nothing(pages, engine, line_app):
    first, other = pages["admin"], pages["staff"]
    _hold_the_slot(first, engine, "holding the slot")
    _ask(other, "a question that never starts")
    _notice(other, "1st in line")
    other.locator("#stop").click()
    _notice(other, "You left the line before the reply started: nothing was saved.")
    assert other.locator("#message textarea").input_value() == "a question that never starts"
    assert other.locator("#chatbot .message.user").count() == 0
    assert other.locator("#send").is_visible()

    engine.gate.set()
    first.locator("#chatbot .reply-stats").last.wait_for(timeout=30_000)
    assert "a question that never starts" not in engine.asked()
    conn = sqlite3.connect(line_app.data_dir / "hearth.db")
    saved = conn.execute(
        "SELECT count(*) FROM messages WHERE content = 'a question that never starts'"
    ).fetchone()[0]
    conn.close()
    assert saved == 0


def test_a_full_line_answers_the_api_with_the_busy_sentence(pages, engine, line_app):
    first, second, other = pages["admin"], pages["admin, 2nd tab"], pages["staff"]
    _hold_the_slot(first, engine, "holding the slot again")
    _ask(second, "waiting one")
    _notice(second, "1st in line")
    _ask(other, "waiting two")
    _notice(other, "in line")  # the line (HEARTH_MAX_WAITING=2) is full now
    http = GradioHTTP(line_app.url, "staff", STAFF_PASSWORD)
    try:
        data = ["one too many", BUNDLED_NAME, None, "You are a helpful assistant.", 0.3, 2048, 0]
        result = http.call(http.fn_index("chat"), data)
    finally:
        http.close()
    assert result.get("success") is False
    assert result["output"]["error"].startswith("busy: 2 people ahead, try again in about ")
    assert "one too many" not in engine.asked()
