"""The chat's Prometheus metrics, read back with prometheus_client's own text parser."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from backend.auth import CLI
from backend.chat.turns import LineBusy, TurnSettings
from backend.engines.base import ChatOptions
from tests.support.chat_line import chat_rig, start_turn

SETTINGS = TurnSettings("scripted:1b", "", ChatOptions(num_ctx=2048))


def scrape(registry) -> dict[str, list]:
    """Every sample by its name, from the exposition text as Prometheus would read it."""
    text = generate_latest(registry).decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples, name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if s.labels.items() >= labels.items()]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


@pytest.fixture
def carol(users):
    return users.add_user(CLI, "carol", "carol-pass-123", "staff")


def test_turns_waits_tokens_and_the_queue_are_counted(store, alice, bob, carol):
    rig = chat_rig(store, max_waiting=1)
    rig.engine.enqueue("one two three")
    rig.engine.gate.clear()
    running = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    left = start_turn(rig, bob, "bob 1", SETTINGS)
    rig.wait_for_waiting(1)
    during = scrape(rig.registry)
    assert value(during, "hearth_chat_queue_depth") == 1
    assert value(during, "hearth_chat_running") == 1
    assert isinstance(start_turn(rig, carol, "carol 1", SETTINGS).finish().error, LineBusy)
    left.cancel.set()
    left.finish()
    rig.engine.gate.set()
    assert running.finish().reply.status == "complete"

    after = scrape(rig.registry)
    model = "scripted:1b"
    for status, count in (("complete", 1), ("left", 1), ("busy", 1)):
        assert value(after, "hearth_chat_requests_total", model=model, status=status) == count
    assert value(after, "hearth_chat_queue_depth") == 0
    assert value(after, "hearth_chat_queue_wait_seconds_count") == 1, "one turn got a slot"
    assert value(after, "hearth_chat_time_to_first_token_seconds_count") == 1
    assert value(after, "hearth_chat_tokens_total", model=model, direction="reply") == 3
    assert value(after, "hearth_chat_tokens_total", model=model, direction="prompt") == 1
    labels = {v for samples in after.values() for s in samples for v in s.labels.values()}
    assert not labels & {"alice", "bob", "carol"}, "no user names as labels"


def test_a_model_the_engine_could_not_list_is_not_a_label(store, alice):
    rig = chat_rig(store)
    rig.engine.listing = False  # the engine cannot say which models it has
    bogus = TurnSettings("made-up-" + "x" * 40, "", ChatOptions(num_ctx=2048))
    events = list(rig.chat.send(alice, None, "hi", bogus))
    assert events[-1].reply.status == "error"
    samples = scrape(rig.registry)
    assert value(samples, "hearth_chat_requests_total", model="unverified", status="error") == 1
