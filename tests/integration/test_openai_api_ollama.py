"""The /v1 API against the real app on the Ollama engine (the Ollama-protocol test server):
the same SDK calls work, and the usage reported is what the server's final chunk counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.ollama_server import OllamaTestServer
from tests.support.openai_api import MODEL, api_usage, new_user_key, sdk

QUESTION = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def ollama_app(
    tmp_path_factory: pytest.TempPathFactory, ollama_test_server: OllamaTestServer
) -> Iterator[AppProcess]:
    ollama_test_server.reset()
    data_dir = tmp_path_factory.mktemp("ollama-app")
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
    with AppProcess(data_dir, engine="ollama", ollama_host=ollama_test_server.url) as app:
        yield app


def test_models_come_from_the_ollama_server(ollama_app):
    _, _, key = new_user_key(ollama_app)
    models = sdk(ollama_app, key).models.list().data
    assert [m.id for m in models] == [MODEL]
    assert models[0].model_extra["context_length"] == 8192


def test_a_completion_and_a_stream_record_the_servers_counts(ollama_app):
    user_id, _, key = new_user_key(ollama_app)
    client = sdk(ollama_app, key)
    reply = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8)
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8, stream=True,
        stream_options={"include_usage": True}))  # fmt: skip
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]).strip()
    total = (2, reply.usage.prompt_tokens + usage.prompt_tokens,
             reply.usage.completion_tokens + usage.completion_tokens, 0)  # fmt: skip
    assert api_usage(ollama_app, user_id) == total
