"""What app.py hands Gradio's launch(): checked on a launched UI, not on the dict alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from backend.services import Services
from backend.settings import Settings
from ui import SESSION_CAPACITY, build_ui, launch_options, mark_matplotlib_absent


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
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    assert mark_matplotlib_absent() is True
    assert sys.modules["matplotlib"] is None
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    assert mark_matplotlib_absent() is False  # once is enough
