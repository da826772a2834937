"""Bad chat inputs over real HTTP against the real app: /chat, the Chat tab by fn_index, the
admin Delete, and a conversation row poisoned in the SQLite file.

Before the chat validation layer, `/chat` with num_ctx=10**9 reached llama.cpp and the app grew
until the kernel killed it; a stored num_ctx above 2**63 made its conversation impossible to
open. Each test here states what the user sees instead, and that nothing was stored or loaded.
"""

from __future__ import annotations

import html
import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from backend.auth import CLI, UserAdmin
from backend.engines.base import quote_value
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.gradio_http import GradioHTTP

MODEL = "smollm2:135m"
# Far more than llama.cpp allocates for SmolLM2 at its whole 8192-token context (~0.5 GiB with
# Python and Gradio): a load at 10**9 tokens would need terabytes and never come back.
RSS_LIMIT_BYTES = 3 * 1024**3


def _db(app: AppProcess) -> Path:
    return app.data_dir / "hearth.db"


@pytest.fixture(scope="module")
def staff(app_server: AppProcess) -> Iterator[GradioHTTP]:
    client = GradioHTTP(app_server.url, "staff", STAFF_PASSWORD)
    yield client
    client.close()


@pytest.fixture(scope="module")
def fn(staff: GradioHTTP) -> dict[str, int]:
    return {d["api_name"]: d["id"] for d in staff.config()["dependencies"]}


def call(
    client: GradioHTTP, fn_index: int, data: list[Any], session: str | None = None
) -> dict[str, Any]:
    """Run one event as the page would, sending JSON as Python writes it (NaN, Infinity kept)."""
    session = session or secrets.token_hex(6)
    body = {"data": data, "fn_index": fn_index, "session_hash": session,
            "event_data": None, "trigger_id": None}  # fmt: skip
    joined = client.client.post("/gradio_api/queue/join", content=json.dumps(body),
                                headers={"content-type": "application/json"})  # fmt: skip
    assert joined.status_code == 200, joined.text
    last: dict[str, Any] = {}
    with client.client.stream("GET", "/gradio_api/queue/data",
                              params={"session_hash": session}) as response:  # fmt: skip
        for line in response.iter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])
                if last.get("msg") in ("process_completed", "close_stream"):
                    break
    assert last.get("msg") == "process_completed", last
    return last["output"]


def conversations(app: AppProcess, name: str) -> int:
    with Store(_db(app)) as store:
        user = store.get_user_by_name(name)
        return store.count_conversations(user.id) if user else 0


def rss_bytes(app: AppProcess) -> int:
    assert app.process is not None and app.process.poll() is None, "the app died"
    return psutil.Process(app.process.pid).memory_info().rss


BAD_CONTEXTS = [10**9, "99999999999999999999", 2**64, -1, 0, "abc", "NaN", "Infinity",
                float("inf"), "2.5", 2.5, None, [], {}, True]  # fmt: skip


@pytest.mark.parametrize("num_ctx", BAD_CONTEXTS, ids=lambda v: quote_value(v, 24))
def test_api_chat_refuses_a_bad_context_length_in_a_sentence(app_server, staff, fn, num_ctx):
    before = conversations(app_server, "staff")
    output = call(staff, fn["chat"], ["Hello?", MODEL, None, "", 0.3, num_ctx, 0])
    error = html.unescape(output["error"] or "")
    assert error.startswith("Context length (num_ctx) must be a whole number from 256 to 131072")
    assert f"got {quote_value(num_ctx)} (" in error
    assert conversations(app_server, "staff") == before, "nothing is stored"
    assert rss_bytes(app_server) < RSS_LIMIT_BYTES


@pytest.mark.parametrize(
    ("index", "value", "words"),
    [(0, "hi \ud800", "not valid Unicode (U+D800, a lone surrogate"),
     (0, "a\x00b", "The message contains a NUL character"),
     (0, "x" * 100_001, "The message is 100,001 characters long"),
     (1, "../../etc/x.gguf", "Model '../../etc/x.gguf' cannot be used: it is a file path"),
     (1, "\ud800", "not valid Unicode (U+D800, a lone surrogate"),
     (1, "llama3:70b", "Model 'llama3:70b' is not installed on this engine; installed:"),
     (2, "abc", "The conversation id must be a whole number"),
     (2, 2**70, "The conversation id must be a whole number"),
     (3, "\ud800", "not valid Unicode (U+D800, a lone surrogate"),
     (4, "NaN", "Temperature must be a number from 0 to 2; got 'NaN' (not a finite number)"),
     (4, float("inf"), "Temperature must be a number from 0 to 2; got inf"),
     (6, "2.5", "Max reply tokens must be a whole number from 0 to 4096; got '2.5'"),
     (6, -1, "Max reply tokens must be a whole number from 0 to 4096; got -1 (too small)")],
)  # fmt: skip
def test_api_chat_names_each_bad_field(app_server, staff, fn, index, value, words):
    data: list[Any] = ["Hello?", MODEL, None, "", 0.3, 4096, 0]
    data[index] = value
    before = conversations(app_server, "staff")
    output = call(staff, fn["chat"], data)
    assert words in html.unescape(output["error"] or ""), output
    assert conversations(app_server, "staff") == before


def test_api_chat_refuses_the_path_of_a_real_gguf_as_model(app_server, staff, fn, smollm_path):
    before = conversations(app_server, "staff")
    output = call(staff, fn["chat"], ["Hello?", str(smollm_path), None, "", 0.3, 4096, 0])
    assert "cannot be used: it is a file path" in html.unescape(output["error"] or "")
    assert conversations(app_server, "staff") == before


@pytest.mark.parametrize(
    ("index", "value", "words"),
    [(6, 10**9, "Context length (num_ctx) must be a whole number from 256 to 131072; got"),
     (6, "Infinity", "Context length (num_ctx) must be a whole number"),
     (7, float("inf"), "Max reply tokens must be a whole number from 0 to 4096; got inf"),
     (7, "abc", "Max reply tokens must be a whole number from 0 to 4096; got 'abc'"),
     (5, "abc", "Temperature must be a number from 0 to 2; got 'abc' (not a number)"),
     (3, "/abs/path.gguf", "Model '/abs/path.gguf' cannot be used: it is a file path"),
     (0, "hi \ud800", "not valid Unicode (U+D800, a lone surrogate")],
)  # fmt: skip
def test_the_chat_tab_by_fn_index_says_the_same(app_server, staff, fn, index, value, words):
    data: list[Any] = ["Hello?", None, [], MODEL, "", 0.3, 4096, 0, None]
    data[index] = value
    before = conversations(app_server, "staff")
    output = call(staff, fn["chat_send"], data)
    # Most values reach the turn, which answers in the notice; a lone surrogate is refused
    # before any handler (ui/errors.py), as an error toast.
    notice = output["data"][3] if "data" in output else "⚠ " + output["error"]
    assert notice.startswith("⚠ ") and words in html.unescape(notice), output
    assert conversations(app_server, "staff") == before
    assert rss_bytes(app_server) < RSS_LIMIT_BYTES


def test_the_model_advice_refuses_a_bad_context_in_a_sentence(staff, fn):
    output = call(staff, fn["chat_model_advice"], [MODEL, 10**9])
    assert "Context length (num_ctx) must be a whole number" in html.unescape(output["error"])


def test_after_the_bad_calls_a_good_one_is_answered(app_server, staff, fn):
    before = conversations(app_server, "staff")
    output = call(staff, fn["chat"], ["Say hi.", MODEL, None, "", 0.0, 2048, 4])
    assert output.get("error") is None and isinstance(output["data"][0], str)
    assert conversations(app_server, "staff") == before + 1
    assert rss_bytes(app_server) < RSS_LIMIT_BYTES


@pytest.fixture
def admin(app_server: AppProcess) -> Iterator[GradioHTTP]:
    client = GradioHTTP(app_server.url, "admin", ADMIN_PASSWORD)
    yield client
    client.close()


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_deleting_a_path_is_refused_and_the_file_stays(app_server, admin, fn, form):
    victim = app_server.data_dir / "victim.gguf"
    victim.write_bytes(b"GGUF" + b"\0" * 64)
    model = str(victim) if form == "absolute" else "../victim"
    output = call(admin, fn["models_delete"], [model])
    assert "cannot be used: it is a file path" in html.unescape(output["error"] or "")
    assert victim.exists()
    with Store(_db(app_server)) as store:
        [entry] = [e for e in store.list_audit(action="model.delete") if e.target == model]
    assert (entry.actor, entry.outcome) == ("admin", "refused")


def test_a_conversation_with_a_poisoned_stored_context_opens_with_a_note(app_server):
    with Store(_db(app_server)) as store:
        user = UserAdmin(store).add_user(CLI, "mallory", "mallory-pass-123", "staff")
    poisoned = '{"num_ctx": 1000000000000000000000000000000, "temperature": NaN, "top_p": 5}'
    with sqlite3.connect(_db(app_server)) as db:
        db.execute(
            "INSERT INTO conversations (owner_id, title, model, system_prompt, options_json,"
            " created_at, updated_at) VALUES (?, 'poisoned', ?, 'Be brief.', ?, ?, ?)",
            (user.id, MODEL, poisoned, "2025-01-01T00:00:00.000000+00:00",
             "2025-01-01T00:00:00.000000+00:00"),
        )  # fmt: skip
    client = GradioHTTP(app_server.url, "mallory", "mallory-pass-123")
    try:
        fns = {d["api_name"]: d["id"] for d in client.config()["dependencies"]}
        session = secrets.token_hex(6)
        call(client, fns["chat_tab_load"], [], session)  # lists the chat in this page session
        output = call(client, fns["chat_open"], [0, None], session)
    finally:
        client.close()
    _, _, title, _, system, temperature, num_ctx, notice, _ = output["data"]
    assert (title, system, temperature, num_ctx) == ("poisoned", "Be brief.", 0.3, 4096)
    assert f"The stored context length {10**30} was out of range; using 4096." in notice
    assert "The stored temperature nan was not valid; using 0.3." in notice
    assert "The stored top p 5 was out of range; using the engine's default." in notice
