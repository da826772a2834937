"""What app.py hands Gradio's launch(): checked on a launched UI, not on the dict alone."""

from __future__ import annotations

from pathlib import Path

from backend.services import Services
from backend.settings import Settings
from ui import SESSION_CAPACITY, build_ui, launch_options


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
