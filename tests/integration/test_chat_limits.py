"""Limits and quotas per role and per user: real ChatService, real SQLite, a fake wall clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.auth import CLI, PermissionDenied
from backend.chat.limits import LimitReached, LimitValues, time_left
from backend.chat.turns import LineBusy, TurnSettings, TurnStarted
from backend.chat.validation import ChatInputError
from backend.engines.base import ChatOptions
from tests.support.chat_line import chat_rig, start_turn

SETTINGS = TurnSettings("scripted:1b", "", ChatOptions(num_ctx=2048))
EVENING = datetime(2025, 3, 14, 20, 48, tzinfo=UTC)


@pytest.fixture
def root(users):
    return users.add_user(CLI, "root", "root-pass-123", "admin")


def _turn(rig, user, text="hello"):
    return list(rig.chat.send(user, None, text, SETTINGS))


def _messages(store, user) -> int:
    return sum(len(store.messages(user.id, c.id)) for c in store.list_conversations(user.id))


def test_a_spent_quota_says_when_it_resets_and_stores_nothing(store, root, alice):
    rig = chat_rig(store, now=EVENING)
    rig.limits.set_for_role(root, "staff", {"reply_tokens_per_day": "5"})
    rig.engine.enqueue("one two three four five six seven eight")
    events = _turn(rig, alice)
    started = next(e for e in events if isinstance(e, TurnStarted))
    assert "at most 5 tokens" in started.note
    assert events[-1].reply.tokens_out == 5, "the reply stops where the quota does"
    before = (_messages(store, alice), len(store.list_conversations(alice.id)))
    with pytest.raises(LimitReached) as refused:
        _turn(rig, alice, "one more")
    assert str(refused.value) == (
        "You have used your 5 reply tokens for today; the quota resets at 00:00 UTC "
        "(in 3 h 12 min)."
    )
    assert refused.value.retry_after_s == pytest.approx(3 * 3600 + 12 * 60)
    assert (_messages(store, alice), len(store.list_conversations(alice.id))) == before
    (audited,) = store.list_audit(action="chat.limit")
    assert (audited.actor, audited.outcome) == ("alice", "refused")


def test_the_quota_resets_at_the_next_utc_day(store, root, alice):
    rig = chat_rig(store, now=EVENING)
    rig.limits.set_for_role(root, "staff", {"reply_tokens_per_day": 3})
    _turn(rig, alice)
    with pytest.raises(LimitReached):
        _turn(rig, alice)
    rig.clock.advance(hours=3, minutes=12, seconds=1)  # 00:00:01 on the 15th
    assert _turn(rig, alice)[-1].reply.status == "complete"
    assert store.reply_tokens_on(alice.id, "2025-03-14") == 3
    assert store.reply_tokens_on(alice.id, "2025-03-15") == 3


def test_requests_per_minute_count_a_sliding_minute(store, root, alice, bob):
    rig = chat_rig(store)
    rig.limits.set_for_role(root, "staff", {"requests_per_minute": 2})
    _turn(rig, alice)
    rig.clock.advance(seconds=20)
    _turn(rig, alice)
    with pytest.raises(LimitReached) as refused:
        _turn(rig, alice)
    assert str(refused.value) == (
        "You have sent 2 requests in the last minute, the most allowed for role staff "
        "(2 a minute); try again in 40 s."
    )
    assert _turn(rig, bob)[-1].reply.status == "complete", "limits are per person"
    rig.clock.advance(seconds=41)
    assert _turn(rig, alice)[-1].reply.status == "complete"


def test_a_users_own_limit_wins_over_their_roles(store, root, alice, bob):
    rig = chat_rig(store)
    rig.limits.set_for_role(root, "staff", {"requests_per_minute": 1})
    rig.limits.set_for_user(root, "alice", {"requests_per_minute": 3})
    for _ in range(3):
        _turn(rig, alice)
    _turn(rig, bob)
    with pytest.raises(LimitReached, match="for your account"):
        _turn(rig, alice)
    with pytest.raises(LimitReached, match="for role staff"):
        _turn(rig, bob)
    effective = rig.limits.effective(alice)
    assert effective.values == LimitValues(requests_per_minute=3)
    rig.limits.set_for_user(root, "alice", {})  # cleared: the role's applies again
    assert rig.limits.effective(alice).values == LimitValues(requests_per_minute=1)


def test_turns_in_flight_cap_a_persons_parallel_turns(store, root, alice):
    rig = chat_rig(store, slots=2)
    rig.limits.set_for_role(root, "staff", {"turns_in_flight": 1})
    rig.engine.gate.clear()
    running = start_turn(rig, alice, "first", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    second = start_turn(rig, alice, "second", SETTINGS).finish()
    assert isinstance(second.error, LimitReached)
    assert str(second.error).startswith("You already have 1 reply in progress")
    rig.engine.gate.set()
    assert running.finish().reply.status == "complete"
    assert _turn(rig, alice, "third")[-1].reply.status == "complete", "free again once done"
    assert _messages(store, alice) == 4


def test_only_admins_set_limits_and_every_change_is_audited(store, root, alice):
    rig = chat_rig(store)
    with pytest.raises(PermissionDenied):
        rig.limits.set_for_role(alice, "staff", {"reply_tokens_per_day": 1})
    with pytest.raises(PermissionDenied):
        rig.limits.table(alice)
    assert store.list_limits() == []
    rig.limits.set_for_role(root, "staff", {"reply_tokens_per_day": "20000", "turns_in_flight": 2})
    rig.limits.set_for_user(root, "ALICE", {"requests_per_minute": 5})
    rows = [(r.role, r.user, r.reply_tokens_per_day) for r in rig.limits.table(root)]
    assert rows == [("staff", None, 20000), (None, "alice", None)]
    audit = [(e.actor, e.target, e.outcome) for e in store.list_audit(action="limits.set")]
    assert audit == [("root", "user:alice", "ok"), ("root", "role:staff", "ok"),
                     ("alice", "role:staff", "refused")]  # fmt: skip
    assert "reply tokens per day 20,000" in store.list_audit(action="limits.set")[1].detail


@pytest.mark.parametrize(
    "value", ["many", -1, 1.5, float("inf"), [3], {"a": 1}, 10**12, "\ud800", True]
)
def test_a_bad_limit_is_refused_by_name_and_nothing_changes(store, root, value):
    rig = chat_rig(store)
    with pytest.raises(ChatInputError, match="Requests per minute must be"):
        rig.limits.set_for_role(root, "staff", {"requests_per_minute": value})
    assert store.list_limits() == []


def test_an_unknown_role_or_user_is_refused(store, root):
    rig = chat_rig(store)
    with pytest.raises(ValueError, match="Role must be one of"):
        rig.limits.set_for_role(root, "owner", {"turns_in_flight": 1})
    with pytest.raises(ValueError, match="There is no user named 'nobody'"):
        rig.limits.set_for_user(root, "nobody", {"turns_in_flight": 1})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (23.2, "24 s"), (60, "1 min"), (299, "5 min"), (3600, "1 h"),
     (11_520, "3 h 12 min")],
)  # fmt: skip
def test_time_left_reads_like_a_clock(seconds, text):
    assert time_left(seconds) == text


def test_the_admin_form_sets_a_role_or_a_user_by_one_target(store, root, alice):
    rig = chat_rig(store)
    rig.limits.set_for(root, "role:staff", {"turns_in_flight": "2"})
    rig.limits.set_for(root, "alice", {"reply_tokens_per_day": 100})
    assert rig.limits.effective(alice).values == LimitValues(2, None, 100)
    with pytest.raises(PermissionDenied):
        rig.limits.set_for(alice, "user:alice", {"reply_tokens_per_day": 10**6})
    assert rig.limits.effective(alice).values == LimitValues(2, None, 100)


def test_a_turn_the_full_line_refused_is_not_counted_as_a_request(store, root, alice, bob):
    rig = chat_rig(store, max_waiting=0)
    rig.limits.set_for_role(root, "staff", {"requests_per_minute": 1})
    rig.engine.gate.clear()
    running = start_turn(rig, bob, "bob 1", SETTINGS)
    assert rig.engine.wait_for_requests(1)
    refused = start_turn(rig, alice, "alice 1", SETTINGS).finish()
    assert isinstance(refused.error, LineBusy)
    rig.engine.gate.set()
    assert running.finish().error is None
    assert _turn(rig, alice)[-1].reply.status == "complete", "still her one request a minute"
    with pytest.raises(LimitReached):
        _turn(rig, alice)
