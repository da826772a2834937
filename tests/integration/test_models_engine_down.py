"""The Models tab with Ollama down: its handlers answer with the engine's readable error."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr
import pytest

from backend.auth import CLI
from backend.services import Services
from backend.settings import Settings
from tests.support.app_process import free_port
from tests.support.gradio_http import GradioHTTP
from ui import models

PASSWORD = "admin-pass-123"


@pytest.fixture
def app(tmp_path, refused_ollama_host: str) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path, engine="ollama", ollama_host=refused_ollama_host)
    services = Services.build(settings)
    services.users.add_user(CLI, "boss", PASSWORD, "admin")
    with gr.Blocks() as demo:
        models.build(services, demo)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, auth=services.auth.authenticate,
                prevent_thread_lock=True, ssr_mode=False, show_error=False)  # fmt: skip
    yield f"http://127.0.0.1:{port}"
    demo.close()
    services.close()


def test_tab_shows_the_engine_error_instead_of_failing(app: str, refused_ollama_host: str):
    client = GradioHTTP(app, "boss", PASSWORD)
    try:
        loaded = client.call(client.fn_index("models_tab_load"), [])
        assert loaded["success"], loaded
        notice = loaded["output"]["data"][-1]
        assert "not reachable" in notice and refused_ollama_host in notice
        catalog = client.call(
            client.fn_index("models_catalog"),
            [4096, "f16", "All families", "Any size", False, None],
        )
        assert catalog["success"] and refused_ollama_host in catalog["output"]["data"][0]
        pulled = client.call(client.fn_index("models_pull"), ["llama3.2:1b"])
        assert "not reachable" in pulled["output"]["error"]
    finally:
        client.close()
