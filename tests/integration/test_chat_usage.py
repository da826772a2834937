"""Usage per user, model and day, written as each turn ends; who may read it; the CSV export."""

from __future__ import annotations

import csv
import io
import threading

import pytest

from backend.auth import CLI, PermissionDenied, UserAdmin
from backend.chat.turns import TurnSettings
from backend.chat.usage import CSV_HEADER, UsageService
from backend.engines.base import ChatDelta, ChatOptions, EngineError
from tests.support.chat_line import chat_rig

OPTIONS = ChatOptions(num_ctx=2048)
SMALL = TurnSettings("scripted:1b", "", OPTIONS)
LARGE = TurnSettings("scripted:7b", "", OPTIONS)


@pytest.fixture
def root(users):
    return users.add_user(CLI, "root", "root-pass-123", "admin")


@pytest.fixture
def rig(store):
    rig = chat_rig(store)
    rig.engine.models = ("scripted:1b", "scripted:7b")
    return rig


def _stopped_turn(rig, user) -> None:
    cancel = threading.Event()
    for event in rig.chat.send(user, None, "a long story", SMALL, cancel):
        if isinstance(event, ChatDelta):
            cancel.set()


def _a_week_of_turns(rig, alice, bob) -> None:
    """14 March: alice 2 on the small model (one fails), bob 1 from the API on the large one.
    15 March: alice 1 stopped."""
    rig.engine.enqueue("one two three", EngineError("the engine fell over"), "four five")
    list(rig.chat.send(alice, None, "first", SMALL))
    list(rig.chat.send(alice, None, "second", SMALL))
    list(rig.chat.send(bob, None, "third", LARGE, source="api"))
    rig.clock.advance(days=1)
    rig.engine.enqueue("six seven eight nine ten eleven")
    _stopped_turn(rig, alice)


def test_each_turn_adds_to_its_days_row(store, rig, alice, bob):
    _a_week_of_turns(rig, alice, bob)
    rows = [(r.day, r.user, r.model, r.source, r.requests, r.reply_tokens, r.errors, r.stopped)
            for r in store.iter_usage("2025-03-01", "2025-03-31")]  # fmt: skip
    assert rows == [
        ("2025-03-14", "alice", "scripted:1b", "page", 2, 3, 1, 0),
        ("2025-03-14", "bob", "scripted:7b", "api", 1, 2, 0, 0),
        ("2025-03-15", "alice", "scripted:1b", "page", 1, 1, 0, 1),
    ]
    days = [(d.key, d.requests, d.prompt_tokens, d.reply_tokens)
            for d in store.usage_by_day("2025-03-01", "2025-03-31")]  # fmt: skip
    assert days == [("2025-03-14", 3, 2, 5), ("2025-03-15", 1, 1, 1)]
    assert all(r.engine_ms >= 0 for r in store.iter_usage("2025-03-01", "2025-03-31"))


def test_admins_see_everyone_and_staff_only_themselves(store, rig, root, alice, bob):
    _a_week_of_turns(rig, alice, bob)
    usage = UsageService(store, UserAdmin(store), rig.clock)
    everyone = usage.report(root, 7)
    assert (everyone.whose, everyone.since, everyone.until) == (
        "everyone",
        "2025-03-09",
        "2025-03-15",
    )
    assert [(u.key, u.requests) for u in everyone.by_user] == [("alice", 3), ("bob", 1)]
    assert [(m.key, m.requests) for m in everyone.by_model] == [
        ("scripted:1b", 3),
        ("scripted:7b", 1),
    ]
    assert everyone.requests == 4 and everyone.reply_tokens == 6
    own = usage.report(alice, 7, "")
    assert own.whose == "alice" and own.requests == 3 and own.by_user == ()
    assert usage.report(root, 7, "bob").requests == 1
    with pytest.raises(PermissionDenied):
        usage.report(alice, 7, "bob")
    assert store.list_audit(action="usage.read", outcome="refused")[0].target == "bob"
    assert usage.report(alice, 1).requests == 1, "today only"


def test_the_csv_export_has_every_row_and_is_audited(store, rig, root, alice, bob):
    _a_week_of_turns(rig, alice, bob)
    usage = UsageService(store, UserAdmin(store), rig.clock)
    rows = list(csv.reader(io.StringIO(usage.export_csv(root, 30))))
    assert tuple(rows[0]) == CSV_HEADER
    assert [r[:5] for r in rows[1:]] == [
        ["2025-03-14", "alice", "scripted:1b", "page", "2"],
        ["2025-03-14", "bob", "scripted:7b", "api", "1"],
        ["2025-03-15", "alice", "scripted:1b", "page", "1"],
    ]
    own = list(csv.reader(io.StringIO(usage.export_csv(bob, 30))))
    assert [r[1] for r in own[1:]] == ["bob"]
    audited = store.list_audit(action="usage.export")
    assert [(e.actor, e.target) for e in audited] == [("bob", "bob"), ("root", "everyone")]
    assert audited[1].detail == "3 rows, 2025-02-14 to 2025-03-15"


@pytest.mark.parametrize("days", [0, 367, "week", None, float("nan"), [7]])
def test_a_bad_range_is_refused_in_a_sentence(store, rig, root, days):
    usage = UsageService(store, UserAdmin(store), rig.clock)
    if days is None:
        assert usage.report(root, days).since == "2025-02-13"  # the default: 30 days
        return
    with pytest.raises(ValueError, match="Days must be a whole number from 1 to 366"):
        usage.report(root, days)
