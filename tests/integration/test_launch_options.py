"""What app.py hands Gradio's launch(): checked on a launched UI, not on the dict alone."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import gradio.routes
import gradio.utils
import pytest
from gradio import queueing, state_holder

from backend.services import Services
from backend.settings import Settings
from ui import SESSION_CAPACITY, build_ui, launch_options
from ui.gradio_queue_wake import WakingQueue
from ui.gradio_trims import (
    GRADIO_ENV_DEFAULTS,
    diff_without_cycles,
    mark_matplotlib_absent,
    trim_gradio_per_event_work,
)


def test_page_sessions_kept_in_memory_are_bounded(tmp_path: Path) -> None:
    """Gradio's default keeps 10,000 page sessions with a copy of the UI's config each."""
    services = Services.build(Settings(data_dir=tmp_path, engine="embedded"))
    try:
        demo = build_ui(services)
        demo.launch(
            server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, ssr_mode=False,
            **launch_options(services),
        )  # fmt: skip
        try:
            assert demo.state_session_capacity == SESSION_CAPACITY
            assert demo.state_holder.capacity == SESSION_CAPACITY
            assert 500 <= SESSION_CAPACITY < 10_000
        finally:
            demo.close()
    finally:
        services.close()


def test_an_absent_matplotlib_fails_to_import_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio imports matplotlib on every event step; a failed import is not remembered."""
    if importlib.util.find_spec("matplotlib") is not None:
        monkeypatch.setitem(sys.modules, "matplotlib", sys.modules.get("matplotlib"))
        assert mark_matplotlib_absent() is False  # installed: left alone
        return
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # restored (absent) after the test
    monkeypatch.delitem(sys.modules, "matplotlib")
    assert mark_matplotlib_absent() is True
    assert sys.modules["matplotlib"] is None
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    assert mark_matplotlib_absent() is False  # once is enough


def test_gradio_does_not_recompute_its_dashboard_summary_after_every_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # whatever trim marks is undone after
    monkeypatch.setattr(state_holder, "SessionState", state_holder.SessionState)  # and switches
    monkeypatch.setattr(gradio.routes, "StateHolder", gradio.routes.StateHolder)
    monkeypatch.setattr(gradio.utils, "diff", gradio.utils.diff)
    monkeypatch.setattr(queueing, "Queue", queueing.Queue)
    monkeypatch.setattr(queueing, "asyncio", queueing.asyncio)
    for name in GRADIO_ENV_DEFAULTS:
        monkeypatch.setenv(name, "")  # so that the variables are restored after the test
        monkeypatch.delenv(name)
    trim_gradio_per_event_work()
    assert gradio.utils.diff is diff_without_cycles
    assert queueing.Queue is WakingQueue
    services = Services.build(Settings(data_dir=tmp_path, engine="embedded"))
    try:
        demo = build_ui(services)
        demo.queue()
        queue = demo._queue
        assert isinstance(queue, WakingQueue)
        assert queue.ANAYLTICS_CACHE_FREQUENCY >= 10**9 and queue.ANALYTICS_MAX_EVENTS == 100
        queue.events_recorded = 10_000  # long after the last summary
        records = [{"function": "chat_send", "status": "success", "process_time": 1.0}] * 50
        assert queue.compute_analytics_summary(records) == {"functions": {}}  # not computed
    finally:
        services.close()
    monkeypatch.setenv("GRADIO_ANALYTICS_MAX_EVENTS", "5000")
    trim_gradio_per_event_work()  # what an operator sets wins
    assert os.environ["GRADIO_ANALYTICS_MAX_EVENTS"] == "5000"
