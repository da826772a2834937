"""Accounts over a real SQLite store: logins, lockout, back-off, user management, audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from backend.auth.accounts import (
    LOCKOUT_AFTER_FAILURES,
    AccountError,
    Accounts,
    AuditFilter,
    PermissionDenied,
    User,
)
from backend.store.database import Store

PASSWORD = "alice-pass-123"  # the conftest alice's


def run_async(coroutine):
    """Run a coroutine on a fresh loop in a thread (a Playwright session may hold this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def root(accounts: Accounts) -> User:
    return accounts.add_user_cli("root", "root-pass-123", "admin")


def _logins(store: Store, name: str) -> list[tuple[str, str]]:
    return [(e.outcome, e.detail) for e in store.list_audit(actor=name, action="login")][::-1]


# -- signing in ------------------------------------------------------------------------------


def test_right_password_signs_in_and_is_audited(accounts, store, alice) -> None:
    assert accounts.check_login("alice", PASSWORD)
    assert _logins(store, "alice") == [("ok", "")]


def test_wrong_password_is_refused_counted_and_audited(accounts, store, alice) -> None:
    assert not accounts.check_login("alice", "wrong-password")
    assert store.get_user_by_name("alice").failed_logins == 1
    assert _logins(store, "alice") == [("failed", "1 failed attempt(s)")]


def test_unknown_user_is_refused_and_audited_under_the_typed_name(accounts, store) -> None:
    assert not accounts.check_login("mallory", "whatever-123")
    assert _logins(store, "mallory") == [("failed", "unknown user")]


def test_a_very_long_unknown_name_is_audited_cut_short(accounts, store) -> None:
    accounts.check_login("x" * 10_000, "pw")
    [entry] = store.list_audit(action="login")
    assert len(entry.actor) <= 65


def test_disabled_user_cannot_sign_in_even_with_the_right_password(
    accounts, store, root, alice
) -> None:
    accounts.set_disabled(root, "alice", True)
    assert not accounts.check_login("alice", PASSWORD)
    assert _logins(store, "alice") == [("refused", "disabled")]
    assert accounts.resolve("alice") is None


def test_lockout_after_repeated_failures_refuses_the_right_password(accounts, store, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES):
        assert not accounts.check_login("alice", "wrong-password")
    assert not accounts.check_login("alice", PASSWORD)
    outcomes = [outcome for outcome, _ in _logins(store, "alice")]
    assert outcomes == ["failed"] * LOCKOUT_AFTER_FAILURES + ["refused"]
    assert "locked until" in _logins(store, "alice")[-1][1]


def test_lockout_ends_when_its_time_has_passed(accounts, store, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES):
        accounts.check_login("alice", "wrong-password")
    record = store.get_user_by_name("alice")
    store.update_user(record.id, locked_until=datetime.now(UTC) - timedelta(seconds=1))
    assert accounts.check_login("alice", PASSWORD)
    assert store.get_user_by_name("alice").failed_logins == 0


def test_success_resets_the_failure_count(accounts, store, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES - 1):
        accounts.check_login("alice", "wrong-password")
    assert accounts.check_login("alice", PASSWORD)
    assert not accounts.check_login("alice", "wrong-password")
    assert store.get_user_by_name("alice").locked_until is None


def test_enabling_a_user_lifts_the_lockout(accounts, root, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES):
        accounts.check_login("alice", "wrong-password")
    accounts.set_disabled(root, "alice", False)
    assert accounts.check_login("alice", PASSWORD)


# -- back-off ----------------------------------------------------------------------------------


def test_recent_failures_count_since_the_last_success(accounts, alice) -> None:
    accounts.check_login("alice", "wrong-password")
    accounts.check_login("alice", "wrong-password")
    assert accounts.recent_failures("alice") == 2
    accounts.check_login("alice", PASSWORD)
    assert accounts.recent_failures("alice") == 0


def test_unknown_names_back_off_like_known_ones(accounts, alice) -> None:
    # The same wait for both, so the delay does not tell which names exist.
    for _ in range(3):
        accounts.check_login("nobody", "wrong-password")
        accounts.check_login("alice", "wrong-password")
    assert accounts.recent_failures("nobody") == 3
    assert accounts.login_delay_for("nobody") == accounts.login_delay_for("alice") > 0


def test_failure_count_ignores_case_of_a_known_name(accounts, alice) -> None:
    accounts.check_login("ALICE", "wrong-password")
    assert accounts.recent_failures("alice") == 1


def test_authenticate_waits_the_back_off_before_each_check(store, alice) -> None:
    slowed = Accounts(store, login_delay_base_s=0.3, login_delay_max_s=1.2)

    def attempt() -> float:
        start = time.perf_counter()
        assert not run_async(slowed.authenticate("alice", "wrong-password"))
        return time.perf_counter() - start

    # Lower bounds only: the sleep the server performs (0, 0.3, 0.6 s) plus a scrypt check.
    waited = [attempt() for _ in range(3)]
    assert waited[1] >= 0.3 and waited[2] >= 0.6, waited
    assert slowed.login_delay_for("alice") == pytest.approx(1.2)


def test_authenticate_accepts_the_right_password(accounts, alice) -> None:
    assert run_async(accounts.authenticate("alice", PASSWORD))


# -- management --------------------------------------------------------------------------------


def test_admin_adds_a_user_who_can_sign_in(accounts, store, root) -> None:
    added = accounts.add_user(root, "carol", "carol-pass-1", "staff")
    assert (added.name, added.role) == ("carol", "staff")
    assert accounts.check_login("carol", "carol-pass-1")
    [entry] = [e for e in store.list_audit(action="user.add") if e.target == "carol"]
    assert (entry.actor, entry.detail) == ("root", "role=staff")


@pytest.mark.parametrize(
    ("call", "message", "action", "target"),
    [
        (lambda a, u: a.add_user(u, "carol", "carol-pass-1", "staff"), "add users", "user.add",
         "carol"),
        (lambda a, u: a.set_role(u, "root", "staff"), "change roles", "user.role", "root"),
        (lambda a, u: a.set_disabled(u, "root", True), "disable users", "user.disable", "root"),
        (lambda a, u: a.set_disabled(u, "root", False), "enable users", "user.enable", "root"),
        (lambda a, u: a.set_password(u, "root", "new-pass-123"), "set passwords", "user.passwd",
         "root"),
        (lambda a, u: a.list_users(u), "list users", "user.list", ""),
        (lambda a, u: a.audit_log(u), "read the audit log", "audit.read", ""),
        (lambda a, u: a.audit_csv(u), "export the audit log", "audit.export", ""),
    ],
)  # fmt: skip
def test_staff_may_not_manage_accounts_and_each_refusal_is_audited(
    accounts, store, root, alice, call, message, action, target
) -> None:
    users, rows = store.list_users(), store.list_audit(limit=1000)
    with pytest.raises(PermissionDenied, match=message):
        call(accounts, alice)
    with pytest.raises(PermissionDenied, match="Sign in"):
        call(accounts, None)
    assert store.list_users() == users
    new = [(e.actor, e.action, e.target, e.outcome) for e in store.list_audit(limit=1000)]
    assert new[:2] == [("?", action, target, "refused"), ("alice", action, target, "refused")]
    assert len(new) == len(rows) + 2
    refused = accounts.audit_log(root, AuditFilter(actor="alice", outcome="refused")).entries
    assert [(e.action, e.detail) for e in refused] == [
        (action, f"Only an admin may {message}; alice is staff.")
    ]


def test_a_refused_target_is_cut_and_made_storable(accounts, store, alice) -> None:
    with pytest.raises(PermissionDenied):
        accounts.add_user(alice, "\ud800" + "x" * 500, "carol-pass-1", "staff")
    [entry] = store.list_audit(action="user.add", outcome="refused")
    assert entry.target == "?" + "x" * 63 + "…"


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("alice", "long-enough-1", "staff", "already exists"),
        ("ALICE", "long-enough-1", "staff", "already exists"),
        ("carol", "short", "staff", "at least 8"),
        ("bad name!", "long-enough-1", "staff", "'bad name!' is not a valid user name"),
        ("", "long-enough-1", "staff", "not a valid user name"),
        ("carol", "long-enough-1", "root", "'root'"),
    ],
)
def test_bad_new_users_are_refused_with_the_reason(
    accounts, store, root, alice, name, password, role, message
) -> None:
    count = store.count_users()
    with pytest.raises(AccountError, match=message):
        accounts.add_user(root, name, password, role)
    assert store.count_users() == count


def test_admin_cannot_demote_or_disable_themself(accounts, store, root) -> None:
    with pytest.raises(AccountError, match="own admin role"):
        accounts.set_role(root, "root", "staff")
    with pytest.raises(AccountError, match="own account"):
        accounts.set_disabled(root, "root", True)
    record = store.get_user_by_name("root")
    assert (record.role, record.disabled) == ("admin", False)


def test_role_change_takes_effect_on_the_next_request(accounts, root, alice) -> None:
    accounts.set_role(root, "alice", "admin")
    assert accounts.resolve("alice").is_admin
    accounts.set_role(root, "alice", "staff")
    assert not accounts.resolve("alice").is_admin


def test_changes_to_an_unknown_user_name_it(accounts, root) -> None:
    with pytest.raises(AccountError, match="no user named 'ghost'"):
        accounts.set_disabled(root, "ghost", True)


def test_admin_sets_a_password(accounts, store, root, alice) -> None:
    accounts.set_password(root, "alice", "brand-new-pass")
    assert accounts.check_login("alice", "brand-new-pass")
    assert not accounts.check_login("alice", PASSWORD)
    assert [e.actor for e in store.list_audit(action="user.passwd")] == ["root"]


# -- audit log -----------------------------------------------------------------------------


def test_audit_log_is_newest_first_and_pages(accounts, store, root) -> None:
    for index in range(7):
        store.audit(actor="x", action=f"a{index}")
    first = accounts.audit_log(root, AuditFilter(actor="x"), page=1, per_page=3)
    last = accounts.audit_log(root, AuditFilter(actor="x"), page=3, per_page=3)
    assert [e.action for e in first.entries] == ["a6", "a5", "a4"]
    assert first.has_next
    assert ([e.action for e in last.entries], last.has_next) == (["a0"], False)


def test_audit_log_filters_combine(accounts, store, root, alice) -> None:
    accounts.check_login("alice", "wrong-password")
    accounts.check_login("alice", PASSWORD)
    shown = accounts.audit_log(root, AuditFilter(actor="alice", action="login", outcome="failed"))
    assert [(e.actor, e.outcome) for e in shown.entries] == [("alice", "failed")]


def test_audit_log_since_a_date(accounts, store, root) -> None:
    store.audit(actor="x", action="today")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert accounts.audit_log(root, AuditFilter(since=tomorrow)).entries == ()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert "today" in [e.action for e in accounts.audit_log(root, AuditFilter(since=today)).entries]


@pytest.mark.parametrize(
    ("filters", "message"),
    [(AuditFilter(since="last week"), "'last week'"), (AuditFilter(outcome="maybe"), "'maybe'")],
)
def test_bad_audit_filters_say_which_value(accounts, root, filters, message) -> None:
    with pytest.raises(ValueError, match=message):
        accounts.audit_log(root, filters)


def test_audit_csv_has_every_matching_row_and_is_itself_audited(accounts, store, root) -> None:
    for index in range(1205):  # more than one export batch
        store.audit(actor="bulk", action="thing", target=f"t{index}")
    rows = list(csv.reader(io.StringIO(accounts.audit_csv(root, AuditFilter(actor="bulk")))))
    assert rows[0] == ["when", "who", "action", "target", "outcome", "detail"]
    assert len(rows) == 1206
    assert rows[1][3] == "t1204"  # newest first
    [export] = store.list_audit(action="audit.export")
    assert (export.actor, export.detail) == ("root", "1205 entries; actor=bulk")


def test_audit_csv_defuses_spreadsheet_formulas(accounts, store, root) -> None:
    accounts.check_login('=HYPERLINK("http://evil")', "pw")
    text = accounts.audit_csv(root, AuditFilter(action="login"))
    who = list(csv.reader(io.StringIO(text)))[1][1]
    assert who == '\'=HYPERLINK("http://evil")'
