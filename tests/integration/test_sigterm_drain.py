"""SIGTERM while a reply streams, on the real app over HTTP: no new turns, a short grace, then
the partial reply is saved as 'interrupted' and the process exits 0.

The engine is Ollama's protocol test server with a scripted reply streamed slowly (it would
take minutes), so the reply is still in flight when the grace period ends.
"""

from __future__ import annotations

import queue
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from backend.auth import CLI, UserAdmin
from backend.chat.shutdown import INTERRUPTED_NOTE, SHUTTING_DOWN
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import AppProcess
from tests.support.gradio_http import GradioHTTP
from tests.support.ollama_server import BUNDLED_NAME
from tests.support.scripted_ollama import numbered_words, scripted_ollama

GRACE_S = 3
EXIT_MARGIN_S = 60  # stopping the server and the interpreter, on a busy 2-core machine
REPLY = numbered_words(6000)
TOKENS_PER_S = 25  # 4 minutes for the whole reply


def chat_args(question: str) -> list[Any]:
    return [question, BUNDLED_NAME, None, "", 0.3, 2048, 0]


def stream_in_thread(client: GradioHTTP, fn_index: int, data: list[Any]) -> queue.Queue:
    """Read one event's SSE messages in a thread (so the reply keeps being consumed)."""
    messages: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for message in client.stream(fn_index, data):
                messages.put(message)
        except httpx.HTTPError as exc:  # the server went away
            messages.put({"msg": "disconnected", "error": str(exc)})

    threading.Thread(target=read, daemon=True).start()
    return messages


def wait_until_not_ready(app: AppProcess, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{app.url}/readyz", timeout=10, trust_env=False)
        if response.status_code == 503:
            return response.json()
        time.sleep(0.05)
    raise AssertionError("/readyz never said the app was shutting down")


def stored_messages(db: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT role, content, status, error FROM messages ORDER BY id")
        return list(rows)
    finally:
        conn.close()


def test_sigterm_during_streaming_keeps_the_partial_reply_as_interrupted(tmp_path: Path):
    data_dir = tmp_path / "data"
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "staff", STAFF_PASSWORD, "staff")
    env = {"HEARTH_SHUTDOWN_GRACE_S": str(GRACE_S)}
    with (
        scripted_ollama(REPLY, TOKENS_PER_S) as ollama,
        AppProcess(data_dir, engine="ollama", ollama_host=ollama.url, extra_env=env) as app,
    ):
        assert app.process is not None
        first = GradioHTTP(app.url, "staff", STAFF_PASSWORD)
        fn = first.fn_index("chat")
        messages = stream_in_thread(first, fn, chat_args("Count for me."))
        generating = 0
        while generating < 3:  # a few pieces of the reply have reached the client
            message = messages.get(timeout=120)
            assert message["msg"] not in ("process_completed", "disconnected"), message
            generating += message["msg"] == "process_generating"

        app.process.send_signal(signal.SIGTERM)
        readiness = wait_until_not_ready(app)
        assert readiness["failed"] == ["shutdown"]
        second = GradioHTTP(app.url, "staff", STAFF_PASSWORD)
        refused = second.call(fn, chat_args("Another question?"))
        assert refused.get("success") is False, refused
        assert SHUTTING_DOWN in refused["output"]["error"]

        assert app.process.wait(timeout=GRACE_S + EXIT_MARGIN_S) == 0
        log = app.log()
        app.process = None  # exited on its own: nothing for stop() to do
        first.close()
        second.close()

    assert "Stopped: 1 reply in flight: 0 finished, 1 saved as interrupted." in log
    (q_role, question, q_status, _), (role, reply, status, error) = stored_messages(
        data_dir / "hearth.db"
    )
    assert (q_role, question, q_status) == ("user", "Count for me.", "complete")
    assert (role, status, error) == ("assistant", "interrupted", INTERRUPTED_NOTE)
    assert len(reply.split()) >= 3 and REPLY.startswith(reply) and reply != REPLY
