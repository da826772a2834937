"""Gradio's queue, woken by work (ui.gradio_queue_wake): an idle app's queue loop does not look
for work every millisecond, and every way work arrives still starts it.

The loops' longest sleep is raised to a minute here, so an event could only start late (and the
client's 20 s read timeout fail the test) if a wake-up were missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import gradio as gr
import httpx
import pytest
from gradio import queueing

from tests.support.gradio_http import GradioHTTP
from ui import gradio_queue_wake
from ui.errors import HearthBlocks

pytestmark = pytest.mark.slow


class CountingQueue(gradio_queue_wake.WakingQueue):
    """Counts the queue loop's looks for work (it asks the queue's length on each)."""

    looks = 0

    def __len__(self) -> int:
        CountingQueue.looks += 1
        return super().__len__()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[GradioHTTP]:
    monkeypatch.setattr(queueing, "asyncio", queueing.asyncio)  # restored after the test
    monkeypatch.setattr(queueing, "Queue", queueing.Queue)
    gradio_queue_wake.install()
    monkeypatch.setattr(queueing, "Queue", CountingQueue)
    monkeypatch.setattr(gradio_queue_wake, "IDLE_LOOK_S", 60.0)
    release = threading.Event()

    def held(text: str) -> str:  # one at a time: the second waits for a free slot
        release.wait(20)
        return text.upper()

    def step(text: str) -> Iterator[str]:
        yield text
        yield text + "!"

    with HearthBlocks() as demo:
        box, out = gr.Textbox(), gr.Textbox()
        box.submit(held, box, out, api_name="held", concurrency_limit=1)
        box.change(step, box, out, api_name="step")
    demo.queue()
    demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True,
                ssr_mode=False, quiet=True)  # fmt: skip
    http = GradioHTTP(demo.local_url.rstrip("/"))
    http.client.timeout = httpx.Timeout(20)
    http.release = release  # type: ignore[attr-defined]
    try:
        yield http
    finally:
        release.set()
        http.close()
        demo.close()


def test_the_queue_is_woken_by_each_event_and_by_each_freed_slot(app: GradioHTTP) -> None:
    step, held = app.fn_index("step"), app.fn_index("held")
    for text in ("a", "b", "c"):  # one after another, each into an idle queue
        assert app.call(step, [text])["output"]["data"] == [text + "!"]
    results: dict[str, dict] = {}
    first = threading.Thread(target=lambda: results.update(x=app.call(held, ["x"])))
    second = threading.Thread(target=lambda: results.update(y=app.call(held, ["y"])))
    first.start()
    time.sleep(0.5)  # "x" holds the one slot; "y" waits in the queue for it
    second.start()
    time.sleep(0.5)
    app.release.set()  # type: ignore[attr-defined]
    first.join(25)
    second.join(25)
    assert "y" in results, "the freed slot did not wake the queue: y never started"
    assert results["x"]["output"]["data"] == ["X"]
    assert results["y"]["output"]["data"] == ["Y"]


def test_an_idle_queue_does_not_look_for_work_every_millisecond(app: GradioHTTP) -> None:
    app.call(app.fn_index("step"), ["warm"])
    before = CountingQueue.looks
    time.sleep(1.0)
    looks = CountingQueue.looks - before
    assert looks < 20, f"{looks} looks in a second (Gradio's own loop: ~1,000)"
