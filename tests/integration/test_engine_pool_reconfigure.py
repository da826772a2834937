"""EnginePool.reconfigure over Ollama protocol test servers (scripted replies, real HTTP, real
OllamaEngine clients): members added, removed and kept, probers stopped, and a chat in flight
on a removed engine that still finishes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, ChatStats, ModelNotFound
from backend.engines.config import EngineSpec, GpuFacts
from backend.engines.pool import EnginePool
from backend.engines.pool_member import member_from_spec
from tests.support.ollama_pool import KillableOllamaServer, scripted_ollama_servers
from tests.support.scripted_ollama import numbered_words

REPLY = numbered_words(2000)
EXTRA = ("alpha:1b", "beta:1b", "gamma:1b")
HELLO = [ChatMessage("user", "Count for me.")]


@pytest.fixture(scope="module")
def servers() -> Iterator[list[KillableOllamaServer]]:
    with scripted_ollama_servers(3, REPLY, tokens_per_s=200, extra_models=EXTRA) as started:
        yield started


def spec(name: str, server: KillableOllamaServer, **kwargs) -> EngineSpec:
    return EngineSpec(name, "ollama", server.url, **kwargs)


@pytest.fixture
def pool(servers) -> Iterator[EnginePool]:
    opened = EnginePool(
        [member_from_spec(spec(n, s)) for n, s in zip("ab", servers[:2], strict=True)],
        interval_s=0.2,
    )
    opened.start()
    yield opened
    opened.close()


def names(pool: EnginePool) -> set[str]:
    return {m.name for m in pool.list_models()}


def wait_for(condition: Callable[[], bool], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_added_removed_and_kept_members(pool, servers):
    a, b = pool.members
    b_state = b.state
    pool.reconfigure([spec("b", servers[1]), spec("c", servers[2])])
    assert [m.name for m in pool.members] == ["b", "c"]
    assert pool.members[0] is b, "an unchanged engine keeps its member"
    assert b.state.checked_at >= b_state.checked_at and b.state.up
    assert pool.members[1].state.up, "a new engine is probed before reconfigure returns"
    assert names(pool) == {"smollm2:135m", "beta:1b", "gamma:1b"}
    assert a.retired and a.closed, "a removed engine with no chat is closed at once"
    assert wait_for(lambda: sorted(pool.probers.names()) == ["b", "c"])
    with pytest.raises(ModelNotFound):
        pool.chat("alpha:1b", HELLO, ChatOptions(num_ctx=2048, num_predict=2))


def test_a_removed_engine_is_no_longer_probed(pool, servers):
    a = pool.members[0]
    pool.reconfigure([spec("b", servers[1])])
    assert wait_for(lambda: pool.probers.names() == ["b"])
    before = a.state
    time.sleep(pool.probers.interval_s * 3)  # several probe intervals: none may touch it
    assert a.state is before


def test_a_new_name_or_gpu_facts_keeps_the_member_and_its_state(pool, servers):
    b = pool.members[1]
    facts = GpuFacts("declared", declared_vram_gib=24.0)
    pool.reconfigure([spec("a", servers[0]), spec("b-renamed", servers[1], gpu_facts=facts)])
    assert pool.members[1] is b and b.name == "b-renamed" and b.state.up
    assert [c.name for c in pool.cards()] == ["a", "b-renamed"]
    assert "declared" in pool.cards()[1].gpu_facts
    assert wait_for(lambda: sorted(pool.probers.names()) == ["a", "b-renamed"])


def test_a_new_api_key_makes_a_new_member(pool, servers):
    a = pool.members[0]
    pool.reconfigure([spec("a", servers[0], api_key="sk-new"), spec("b", servers[1])])
    assert pool.members[0] is not a and a.closed
    assert pool.cards()[0].api_key_set


def test_a_chat_in_flight_on_a_removed_engine_finishes(pool, servers):
    a = pool.members[0]
    stream = pool.chat("alpha:1b", HELLO, ChatOptions(num_ctx=2048, num_predict=40))
    text = ""
    for item in stream:
        assert isinstance(item, ChatDelta)
        text += item.text
        if len(text.split()) >= 5:
            break
    pool.reconfigure([spec("b", servers[1])])
    assert a.retired and not a.closed and a.in_flight == 1, "closed only after its chat"
    rest = list(stream)
    text += "".join(i.text for i in rest if isinstance(i, ChatDelta))
    assert isinstance(rest[-1], ChatStats) and rest[-1].done_reason == "stop"
    assert text.split() == REPLY.split()[:40], "the whole reply, nothing cut"
    assert a.closed and a.in_flight == 0
    assert "alpha:1b" not in names(pool)


def test_an_empty_list_is_refused_and_changes_nothing(pool):
    before = pool.members
    with pytest.raises(ValueError, match="at least one engine"):
        pool.reconfigure([])
    assert pool.members == before


def test_a_chat_that_picked_an_engine_just_removed_goes_to_the_next(pool, servers):
    """The race: a chat read the list before a removal; the removed engine takes no new chat."""
    a, b = pool.members
    before = [len(s.scripted.requests) for s in servers]
    a.retire()  # as reconfigure does, while `a` is still in the list this chat reads
    items = list(pool.chat("smollm2:135m", HELLO, ChatOptions(num_ctx=2048, num_predict=2)))
    assert isinstance(items[-1], ChatStats) and items[-1].done_reason == "stop"
    after = [len(s.scripted.requests) for s in servers]
    assert [x - y for x, y in zip(after, before, strict=True)] == [0, 1, 0]
    assert a.in_flight == 0 and b.in_flight == 0
