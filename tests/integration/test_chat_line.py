"""The fair line in the chat path: real ChatService, real SQLite, a scripted engine, real threads.

The engine's gate holds the turn in the slot still, so who waits, in which order, and what is
stored are decided by the line alone.
"""

from __future__ import annotations

import threading

import pytest

from backend.auth import CLI
from backend.chat.turns import LineBusy, TurnSettings
from backend.engines.base import ChatMessage, ChatOptions
from tests.support.chat_line import Turn, chat_rig, start_turn

SETTINGS = TurnSettings("scripted:1b", "", ChatOptions(num_ctx=2048))


@pytest.fixture
def carol(users):
    return users.add_user(CLI, "carol", "carol-pass-123", "staff")


def _stored(store, user) -> tuple[int, list[str]]:
    conversations = store.list_conversations(user.id)
    contents = [m.content for c in conversations for m in store.messages(user.id, c.id)]
    return len(conversations), contents


def test_a_users_second_question_waits_behind_everyones_first(store, alice, bob, carol):
    rig = chat_rig(store)
    rig.engine.gate.clear()
    first = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    turns = {"alice 1": first}
    for count, (user, text) in enumerate(
        [(alice, "alice 2"), (alice, "alice 3"), (bob, "bob 1"), (carol, "carol 1")], start=1
    ):
        turns[text] = start_turn(rig, user, text, SETTINGS)
        rig.wait_for_waiting(count)  # join in this order
    # alice 2 polls its place: let it see bob and carol go ahead before anyone moves on
    rig.wait_until(lambda: any(w.position == 3 for w in turns["alice 2"].waits), "alice 2 3rd")
    rig.engine.gate.set()
    for turn in turns.values():
        assert turn.finish().error is None
    assert rig.engine.asked() == ["alice 1", "bob 1", "carol 1", "alice 2", "alice 3"]
    assert turns["carol 1"].waits[0].describe().startswith("2nd in line · about ")
    assert turns["alice 2"].waits[0].position == 1
    assert max(w.position for w in turns["alice 2"].waits) == 3, "bob and carol went ahead"
    assert not first.waits, "a free slot starts at once"
    assert all(t.reply.status == "complete" for t in turns.values())


def test_one_users_turns_never_take_more_slots_than_the_per_user_cap(store, alice, bob):
    rig = chat_rig(store, slots=2, per_user=1)
    rig.engine.gate.clear()
    first = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    second = start_turn(rig, alice, "alice 2", SETTINGS)
    rig.wait_for_waiting(1)
    other = start_turn(rig, bob, "bob 1", SETTINGS)
    assert rig.engine.wait_for_requests(2)
    assert rig.engine.asked() == ["alice 1", "bob 1"], "bob takes the free slot, alice waits"
    assert rig.line.stats().running == 2 and rig.line.stats().waiting == 1
    rig.engine.gate.set()
    for turn in (first, second, other):
        assert turn.finish().error is None
    assert second.waits and second.waits[0].position == 1
    assert not other.waits


def test_a_full_line_says_busy_with_people_ahead_and_stores_nothing(store, alice, bob, carol):
    rig = chat_rig(store, max_waiting=1)
    rig.engine.gate.clear()
    running = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    waiting = start_turn(rig, bob, "bob 1", SETTINGS)
    rig.wait_for_waiting(1)
    refused = start_turn(rig, carol, "carol 1", SETTINGS).finish()
    assert isinstance(refused.error, LineBusy)
    assert str(refused.error).startswith("busy: 1 person ahead, try again in about ")
    assert str(refused.error).endswith(" s")
    assert _stored(store, carol) == (0, [])
    rig.engine.gate.set()
    assert running.finish().error is None and waiting.finish().error is None


def test_stop_while_waiting_leaves_the_line_and_writes_nothing(store, alice, bob):
    rig = chat_rig(store)
    rig.engine.gate.clear()
    running = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    queued = start_turn(rig, bob, "bob 1", SETTINGS)
    rig.wait_for_waiting(1)
    queued.cancel.set()  # what the Stop button does
    queued.finish()
    assert queued.error is None and queued.waits and not queued.started
    assert _stored(store, bob) == (0, [])
    assert rig.line.stats().waiting == 0 and rig.line.stats().left_total == 1
    rig.engine.gate.set()
    assert running.finish().reply.status == "complete"
    assert rig.engine.asked() == ["alice 1"], "the stopped turn never reached the engine"
    day = rig.clock().date().isoformat()
    assert [(u.key, u.requests) for u in store.usage_by_user(day, day)] == [("alice", 1)]


def test_regenerate_stopped_while_waiting_keeps_the_old_reply(store, alice, bob):
    rig = chat_rig(store)
    rig.engine.enqueue("the first answer")
    done = start_turn(rig, bob, "bob 1", SETTINGS).finish()
    conversation_id = done.reply.conversation_id
    rig.engine.gate.clear()
    running = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(2)
    cancel = threading.Event()
    again = rig.chat.regenerate(bob, conversation_id, SETTINGS, cancel)
    assert next(again).position == 1
    cancel.set()
    assert list(again) == []
    kept = [m.content for m in store.messages(bob.id, conversation_id)]
    assert kept == ["bob 1", "the first answer"]
    rig.engine.gate.set()
    assert running.finish().error is None


def test_closing_a_waiting_turn_frees_its_place(store, alice, bob):
    rig = chat_rig(store)
    rig.engine.gate.clear()
    running = start_turn(rig, alice, "alice 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    turn = rig.chat.send(bob, None, "bob 1", SETTINGS)
    assert next(turn).position == 1
    turn.close()  # the page went away
    assert rig.line.stats().waiting == 0
    assert _stored(store, bob) == (0, [])
    rig.engine.gate.set()
    assert running.finish().error is None


def test_api_and_page_turns_wait_in_one_fair_line(store, alice, bob, carol):
    """An API client (ChatService.exchange, as /v1 calls it) gets no lane of its own: its
    second question waits behind the page users' first ones, like a second browser tab."""
    rig = chat_rig(store)
    rig.engine.gate.clear()

    def api_turn(user, text: str) -> Turn:
        cancel = threading.Event()
        sent = [ChatMessage("user", text)]
        turn = Turn(lambda: rig.chat.exchange(user, sent, SETTINGS, cancel), cancel)
        turn.start()
        return turn

    turns = {"api 1": api_turn(alice, "api 1")}
    assert rig.engine.wait_for_requests(1)
    for count, (start, text) in enumerate(
        [(lambda: api_turn(alice, "api 2"), "api 2"),
         (lambda: start_turn(rig, bob, "bob 1", SETTINGS), "bob 1"),
         (lambda: start_turn(rig, carol, "carol 1", SETTINGS), "carol 1")],
        start=1,
    ):  # fmt: skip
        turns[text] = start()
        rig.wait_for_waiting(count)
    rig.engine.gate.set()
    for turn in turns.values():
        assert turn.finish().error is None
    assert rig.engine.asked() == ["api 1", "bob 1", "carol 1", "api 2"]
    assert store.list_conversations(alice.id) == [], "API turns are not kept unless asked"
