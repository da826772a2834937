"""EnginePool over three Ollama protocol test servers (scripted replies, real HTTP, real
OllamaEngine clients): routing, an engine killed mid-reply, an engine restarted.

The only time bounds are the issue's: an engine that dies mid-reply ends it with an error
within 2 s, and its models leave the list within 5 s (both used as deadlines).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.chat.turns import ChatService, TurnFinished, TurnSettings, TurnStarted
from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, EngineUnavailable
from backend.engines.config import EngineSpec
from backend.engines.ollama import OllamaEngine
from backend.engines.pool import EnginePool
from backend.engines.pool_member import member_from_spec
from backend.store.database import Store
from tests.support.chat_service import model_service
from tests.support.ollama_pool import KillableOllamaServer, scripted_ollama_servers
from tests.support.ollama_server import BUNDLED_NAME
from tests.support.scripted_ollama import numbered_words

REPLY = numbered_words(2000)
EXTRA = ("alpha:1b", "beta:1b", "gamma:1b")
HELLO = [ChatMessage("user", "Count for me.")]
OPTIONS = ChatOptions(num_ctx=2048)
DOWN_WITHIN_S = 5.0
ERROR_WITHIN_S = 2.0


@pytest.fixture
def servers() -> Iterator[list[KillableOllamaServer]]:
    # 100 words a second: a reply of 2000 words is still streaming when a test kills its server.
    with scripted_ollama_servers(3, REPLY, tokens_per_s=100, extra_models=EXTRA) as started:
        yield started


@pytest.fixture
def pool(servers: list[KillableOllamaServer]) -> Iterator[EnginePool]:
    members = [
        member_from_spec(EngineSpec(name, "ollama", server.url), timeout_s=60)
        for name, server in zip(("a", "b", "c"), servers, strict=True)
    ]
    opened = EnginePool(members, interval_s=0.5)
    opened.start()
    yield opened
    opened.close()


def names(pool: EnginePool) -> set[str]:
    try:
        return {m.name for m in pool.list_models()}
    except EngineUnavailable:
        return set()


def wait_for(condition: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_the_pool_lists_every_model_once_with_where_it_lives(pool):
    assert names(pool) == {"smollm2:135m", *EXTRA}
    assert pool.locations("beta:1b") == ["b"]
    assert sorted(pool.locations(BUNDLED_NAME)) == ["a", "b", "c"]
    assert pool.status().reachable and pool.status().detail.startswith("3 of 3 engines up")


def test_a_chat_goes_to_the_engine_that_has_the_model_loaded(pool, servers):
    loader = OllamaEngine(servers[2].url, timeout_s=30)
    loader.load(BUNDLED_NAME, 2048)
    loader.close()
    pool.refresh()
    assert pool.locations(BUNDLED_NAME)[0] == "c"
    for _ in range(2):
        items = list(pool.chat(BUNDLED_NAME, HELLO, ChatOptions(num_ctx=2048, num_predict=3)))
        assert items[-1].done_reason == "stop"
    assert [len(s.scripted.requests) for s in servers] == [0, 0, 2]


def test_a_model_on_one_engine_is_served_by_that_engine(pool, servers):
    text = "".join(
        item.text
        for item in pool.chat("beta:1b", HELLO, ChatOptions(num_ctx=2048, num_predict=4))
        if isinstance(item, ChatDelta)
    )
    assert text == "w0 w1 w2 w3"
    assert [len(s.scripted.requests) for s in servers] == [0, 1, 0]


def test_an_engine_killed_mid_reply_ends_it_within_2s_and_its_models_leave(pool, servers):
    stream = pool.chat("alpha:1b", HELLO, OPTIONS)
    partial = ""
    for item in stream:
        assert isinstance(item, ChatDelta)
        partial += item.text
        if len(partial.split()) >= 5:
            break
    killed_at = time.monotonic()
    servers[0].kill()
    with pytest.raises(EngineUnavailable) as caught:
        for item in stream:
            if isinstance(item, ChatDelta):
                partial += item.text
    assert time.monotonic() - killed_at < ERROR_WITHIN_S
    assert "'a' stopped answering" in str(caught.value)
    assert REPLY.startswith(partial) and partial != REPLY
    assert wait_for(lambda: "alpha:1b" not in names(pool), DOWN_WITHIN_S)
    assert "beta:1b" in names(pool)


def test_an_idle_engine_that_stops_is_marked_down_and_comes_back_after_a_restart(pool, servers):
    servers[2].kill()
    killed_at = time.monotonic()
    assert wait_for(lambda: "gamma:1b" not in names(pool), DOWN_WITHIN_S)
    assert time.monotonic() - killed_at < DOWN_WITHIN_S
    assert pool.status().detail.startswith("2 of 3 engines up")
    servers[2].restart()
    assert wait_for(lambda: "gamma:1b" in names(pool), DOWN_WITHIN_S)
    items = list(pool.chat("gamma:1b", HELLO, ChatOptions(num_ctx=2048, num_predict=2)))
    assert items[-1].done_reason == "stop"
    assert len(servers[2].scripted.requests) == 1


def test_no_engine_up_and_no_fallback_says_which_are_down(pool, servers):
    for server in servers:
        server.kill()
    assert wait_for(lambda: not pool.up_members(), DOWN_WITHIN_S)
    with pytest.raises(EngineUnavailable, match="No engine is up: a ") as caught:
        pool.list_models()
    assert "c (" in str(caught.value)
    assert not pool.status().reachable


def test_chat_service_keeps_the_partial_reply_with_status_error(
    pool, servers, store: Store, alice, tmp_path: Path
):
    chat = ChatService(store, lambda: pool, model_service(store, pool, tmp_path).chat)
    events = chat.send(alice, None, "Count for me.", TurnSettings("beta:1b", "", OPTIONS))
    started = next(e for e in events if isinstance(e, TurnStarted))
    streamed = ""
    for event in events:
        if isinstance(event, ChatDelta):
            streamed += event.text
            if len(streamed.split()) >= 5:
                break
    killed_at = time.monotonic()
    servers[1].kill()
    rest = list(events)
    assert time.monotonic() - killed_at < ERROR_WITHIN_S
    streamed += "".join(e.text for e in rest if isinstance(e, ChatDelta))
    finished = rest[-1]
    assert isinstance(finished, TurnFinished)
    reply = store.messages(alice.id, started.conversation.id)[-1]
    assert (reply.role, reply.status) == ("assistant", "error")
    assert reply.content == streamed and REPLY.startswith(reply.content)
    assert len(reply.content.split()) >= 5
    assert "'b' stopped answering" in (reply.error or "")


def test_hearth_engines_in_the_settings_builds_a_pool_with_the_embedded_fallback(
    servers, tmp_path: Path
):
    import json

    from backend.services import choose_engine, engine_slots
    from backend.settings import Settings

    pairs = zip("ab", servers[:2], strict=True)
    listed = [{"name": n, "kind": "ollama", "url": s.url} for n, s in pairs]
    settings = Settings(data_dir=tmp_path, engines=json.dumps(listed))
    choice = choose_engine(settings)
    assert isinstance(choice.engine, EnginePool)
    assert [m.name for m in choice.engine.members] == ["a", "b"]
    assert choice.engine.fallback is not None and choice.engine.fallback.name == "embedded"
    assert engine_slots(settings, choice.engine) == 2
    assert "2 engine(s) from HEARTH_ENGINES" in choice.reason
    choice.engine.close()
