"""The store's session clock, its audit vocabulary, and the migration that brought both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backend.store.accounts import AUDIT_OUTCOMES
from backend.store.database import Store, UserNotFound
from backend.store.migrations import migrate

M004 = "m004_sessions_refused_outcome"


def test_a_new_user_has_no_ended_sessions(store: Store, owner: int) -> None:
    assert store.session_epoch(owner) == 0
    assert store.session_clock() == 0


def test_ending_sessions_stamps_the_user_with_the_advanced_clock(store: Store, owner: int) -> None:
    other = store.create_user("bob", "staff", "h").id
    before = store.session_clock()
    assert store.end_sessions(owner) == before + 1
    assert store.end_sessions(other) == before + 2
    assert (store.session_epoch(owner), store.session_epoch(other)) == (before + 1, before + 2)
    assert store.session_clock() == before + 2


def test_a_user_change_can_end_sessions_in_the_same_write(store: Store, owner: int) -> None:
    store.update_user(owner, password_hash="new", end_sessions=True)
    assert store.session_epoch(owner) == store.session_clock() == 1
    store.update_user(owner, failed_logins=1)  # other changes leave sessions alone
    assert store.session_epoch(owner) == 1


def test_sessions_of_a_missing_user(store: Store) -> None:
    assert store.session_epoch(999) is None
    with pytest.raises(UserNotFound):
        store.end_sessions(999)
    assert store.session_clock() == 0


@pytest.mark.parametrize("outcome", AUDIT_OUTCOMES)
def test_every_outcome_of_the_vocabulary_is_stored_and_selectable(store, outcome) -> None:
    store.audit(actor="a", action="x", outcome=outcome)
    assert [e.outcome for e in store.list_audit(outcome=outcome)] == [outcome]


@pytest.mark.parametrize("outcome", ["denied", "OK", "", "error"])
def test_an_outcome_outside_the_vocabulary_is_refused(store: Store, outcome: str) -> None:
    with pytest.raises(ValueError, match="outcome must be one of ok, failed, refused, cancelled"):
        store.audit(actor="a", action="x", outcome=outcome)
    assert store.list_audit() == []


def test_the_upgrade_turns_old_denied_rows_into_refused(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, stop_before=M004)
    conn.execute(
        "INSERT INTO users (id, name, role, password_hash, created_at)"
        " VALUES (1, 'alice', 'staff', 'h', '2025-01-01T00:00:00+00:00')"
    )
    conn.executemany(
        "INSERT INTO audit (at, actor, action, outcome) VALUES (?, ?, ?, ?)",
        [("2025-01-01T00:00:00+00:00", "alice", "model.load", outcome)
         for outcome in ("denied", "ok", "denied", "failed")],
    )  # fmt: skip
    conn.close()
    with Store(path) as store:
        assert M004 in store.schema_version
        outcomes = [e.outcome for e in store.list_audit()][::-1]
        assert outcomes == ["refused", "ok", "refused", "failed"]
        assert [e.outcome for e in store.list_audit(outcome="refused")] == ["refused"] * 2
        assert store.session_epoch(1) == 0 and store.session_clock() == 0
