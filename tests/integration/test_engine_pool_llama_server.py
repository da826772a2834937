"""EnginePool with a REAL OpenAI-compatible server (`python -m llama_cpp.server`) beside an
Ollama protocol test server: each chat goes to the engine that serves its model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, ChatStats
from backend.engines.config import EngineSpec
from backend.engines.pool import EnginePool
from backend.engines.pool_member import member_from_spec
from tests.support.llama_cpp_server import LlamaCppServer
from tests.support.ollama_pool import KillableOllamaServer, scripted_ollama_servers

LLAMA_ALIAS = "local-smollm"  # a name only the llama.cpp server has
HELLO = [ChatMessage("user", "Say hello.")]
SHORT = ChatOptions(temperature=0.0, num_ctx=2048, num_predict=6, seed=1)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory, smollm_path) -> Iterator[LlamaCppServer]:
    log_dir = tmp_path_factory.mktemp("pool-llama-cpp")
    with LlamaCppServer(smollm_path, log_dir, alias=LLAMA_ALIAS) as server:
        yield server


@pytest.fixture
def ollama() -> Iterator[KillableOllamaServer]:
    with scripted_ollama_servers(
        1, "o0 o1 o2", tokens_per_s=0, extra_models=("only-ollama:1b",)
    ) as servers:
        yield servers[0]


@pytest.fixture
def pool(ollama, llama_server) -> Iterator[EnginePool]:
    members = [
        member_from_spec(EngineSpec("box1", "ollama", ollama.url), timeout_s=60),
        member_from_spec(EngineSpec("llama", "openai", llama_server.url), timeout_s=120),
    ]
    opened = EnginePool(members, interval_s=1.0)
    opened.start()
    yield opened
    opened.close()


def test_a_chat_to_the_llama_server_model_goes_to_that_server(pool, ollama, llama_server):
    assert pool.locations(LLAMA_ALIAS) == ["llama"]
    assert pool.locations("only-ollama:1b") == ["box1"]
    before = llama_server.chat_requests_seen()
    items = list(pool.chat(LLAMA_ALIAS, HELLO, SHORT))
    assert isinstance(items[-1], ChatStats) and items[-1].counted_by == "hearth"
    assert any(isinstance(i, ChatDelta) and i.text for i in items)
    assert llama_server.chat_requests_seen() == before + 1
    assert ollama.scripted.requests == []


def test_a_chat_to_the_ollama_model_does_not_reach_the_llama_server(pool, ollama, llama_server):
    before = llama_server.chat_requests_seen()
    text = "".join(
        i.text for i in pool.chat("only-ollama:1b", HELLO, SHORT) if isinstance(i, ChatDelta)
    )
    assert text == "o0 o1 o2"
    assert llama_server.chat_requests_seen() == before


def test_the_llama_servers_card_says_chat_only_and_what_it_serves(pool):
    cards = {card.name: card for card in pool.cards()}
    assert cards["llama"].up and not cards["llama"].can_manage_models
    assert [m.name for m in cards["llama"].loaded] == [LLAMA_ALIAS]
    assert cards["box1"].can_manage_models and cards["box1"].version
