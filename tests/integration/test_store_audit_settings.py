"""Audit log and the small settings table, against a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.store.database import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "hearth.db") as store:
        yield store


def test_audit_records_an_entry(store: Store) -> None:
    store.audit(actor="admin", action="model.load", target="qwen:7b", outcome="refused",
                detail="needs 9.1 GiB, 6.0 GiB free")  # fmt: skip
    [entry] = store.list_audit()
    assert (entry.actor, entry.action, entry.target, entry.outcome, entry.detail) == (
        "admin", "model.load", "qwen:7b", "refused", "needs 9.1 GiB, 6.0 GiB free"
    )  # fmt: skip
    assert entry.at.endswith("+00:00")


def test_audit_lists_newest_first(store: Store) -> None:
    for action in ("first", "second", "third"):
        store.audit(actor="admin", action=action)
    assert [e.action for e in store.list_audit()] == ["third", "second", "first"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"actor": "bob"}, ["b-login"]),
        ({"action": "login"}, ["a-login"]),
        ({"outcome": "refused"}, ["b-login"]),
        ({"actor": "alice", "outcome": "ok"}, ["a-delete", "a-login"]),
    ],
)
def test_audit_filters_combine(store: Store, filters: dict, expected: list[str]) -> None:
    store.audit(actor="alice", action="login", detail="a-login")
    store.audit(actor="bob", action="login-attempt", outcome="refused", detail="b-login")
    store.audit(actor="alice", action="delete", detail="a-delete")
    assert [e.detail for e in store.list_audit(**filters)] == expected


def test_audit_since_keeps_later_entries(store: Store) -> None:
    store.audit(actor="a", action="old")
    cutoff = store.list_audit()[0].at
    store.audit(actor="a", action="new")
    assert [e.action for e in store.list_audit(since=cutoff)] == ["new", "old"]
    assert store.list_audit(since="2999-01-01T00:00:00Z") == []


def test_audit_paginates(store: Store) -> None:
    for i in range(5):
        store.audit(actor="a", action=f"a{i}")
    pages = [store.list_audit(limit=2, offset=o) for o in (0, 2, 4)]
    assert [[e.action for e in page] for page in pages] == [["a4", "a3"], ["a2", "a1"], ["a0"]]


def test_audit_rejects_bad_since(store: Store) -> None:
    with pytest.raises(ValueError, match="'last week'"):
        store.list_audit(since="last week")


def test_setting_default_when_missing(store: Store) -> None:
    assert store.get_setting("missing") is None
    assert store.get_setting("missing", 42) == 42


@pytest.mark.parametrize("value", [3, 2.5, "text", True, None, [1, "a"], {"nested": {"k": [1]}}])
def test_setting_round_trips_json_values(store: Store, value: object) -> None:
    store.set_setting("key", value)
    assert store.get_setting("key", "default") == value


def test_setting_overwrites(store: Store) -> None:
    store.set_setting("policy", "warn")
    store.set_setting("policy", "refuse")
    assert store.get_setting("policy") == "refuse"


def test_setting_rejects_non_json_value(store: Store) -> None:
    with pytest.raises(ValueError, match="'when'"):
        store.set_setting("when", object())
    assert store.get_setting("when") is None


def test_settings_survive_reopening(tmp_path: Path) -> None:
    with Store(tmp_path / "hearth.db") as store:
        store.set_setting("admission.policy", {"headroom_mib": 512})
    with Store(tmp_path / "hearth.db") as store:
        assert store.get_setting("admission.policy") == {"headroom_mib": 512}
