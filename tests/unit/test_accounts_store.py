"""Accounts over a real SQLite store: logins, lockout, back-off, user management, audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from backend.auth import (
    CLI,
    LOCKOUT_AFTER_FAILURES,
    AccountError,
    AuditFilter,
    Authentication,
    PermissionDenied,
    User,
    UserAdmin,
)
from backend.store.database import Store

PASSWORD = "alice-pass-123"  # the conftest alice's


def run_async(coroutine):
    """Run a coroutine on a fresh loop in a thread (a Playwright session may hold this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def root(users: UserAdmin) -> User:
    return users.add_user(CLI, "root", "root-pass-123", "admin")


def _logins(store: Store, name: str) -> list[tuple[str, str]]:
    return [(e.outcome, e.detail) for e in store.list_audit(actor=name, action="login")][::-1]


# -- signing in ------------------------------------------------------------------------------


def test_right_password_signs_in_and_is_audited(auth, store, alice) -> None:
    assert auth.check_login("alice", PASSWORD)
    assert _logins(store, "alice") == [("ok", "")]


def test_wrong_password_is_refused_counted_and_audited(auth, store, alice) -> None:
    assert not auth.check_login("alice", "wrong-password")
    assert store.get_user_by_name("alice").failed_logins == 1
    assert _logins(store, "alice") == [("failed", "1 failed attempt(s)")]


def test_unknown_user_is_refused_and_audited_under_the_typed_name(auth, store) -> None:
    assert not auth.check_login("mallory", "whatever-123")
    assert _logins(store, "mallory") == [("failed", "unknown user")]


def test_a_very_long_unknown_name_is_audited_cut_short(auth, store) -> None:
    auth.check_login("x" * 10_000, "pw")
    [entry] = store.list_audit(action="login")
    assert len(entry.actor) <= 65


def test_disabled_user_cannot_sign_in_even_with_the_right_password(
    auth, users, store, root, alice
) -> None:
    users.set_disabled(root, "alice", True)
    assert not auth.check_login("alice", PASSWORD)
    assert _logins(store, "alice") == [("refused", "disabled")]
    assert auth.resolve("alice") is None


def test_lockout_after_repeated_failures_refuses_the_right_password(auth, store, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES):
        assert not auth.check_login("alice", "wrong-password")
    assert not auth.check_login("alice", PASSWORD)
    outcomes = [outcome for outcome, _ in _logins(store, "alice")]
    assert outcomes == ["failed"] * LOCKOUT_AFTER_FAILURES + ["refused"]
    assert "locked until" in _logins(store, "alice")[-1][1]


def test_lockout_ends_when_its_time_has_passed(auth, store, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES):
        auth.check_login("alice", "wrong-password")
    record = store.get_user_by_name("alice")
    store.update_user(record.id, locked_until=datetime.now(UTC) - timedelta(seconds=1))
    assert auth.check_login("alice", PASSWORD)
    assert store.get_user_by_name("alice").failed_logins == 0


def test_success_resets_the_failure_count(auth, store, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES - 1):
        auth.check_login("alice", "wrong-password")
    assert auth.check_login("alice", PASSWORD)
    assert not auth.check_login("alice", "wrong-password")
    assert store.get_user_by_name("alice").locked_until is None


def test_enabling_a_user_lifts_the_lockout(auth, users, root, alice) -> None:
    for _ in range(LOCKOUT_AFTER_FAILURES):
        auth.check_login("alice", "wrong-password")
    users.set_disabled(root, "alice", False)
    assert auth.check_login("alice", PASSWORD)


# -- back-off ----------------------------------------------------------------------------------


def test_recent_failures_count_since_the_last_success(auth, alice) -> None:
    auth.check_login("alice", "wrong-password")
    auth.check_login("alice", "wrong-password")
    assert auth.recent_failures("alice") == 2
    auth.check_login("alice", PASSWORD)
    assert auth.recent_failures("alice") == 0


def test_unknown_names_back_off_like_known_ones(auth, alice) -> None:
    # The same wait for both, so the delay does not tell which names exist.
    for _ in range(3):
        auth.check_login("nobody", "wrong-password")
        auth.check_login("alice", "wrong-password")
    assert auth.recent_failures("nobody") == 3
    assert auth.login_delay_for("nobody") == auth.login_delay_for("alice") > 0


def test_failure_count_ignores_case_of_a_known_name(auth, alice) -> None:
    auth.check_login("ALICE", "wrong-password")
    assert auth.recent_failures("alice") == 1


def test_authenticate_waits_the_back_off_before_each_check(store, alice) -> None:
    slowed = Authentication(store, login_delay_base_s=0.3, login_delay_max_s=1.2)

    def attempt() -> float:
        start = time.perf_counter()
        assert not run_async(slowed.authenticate("alice", "wrong-password"))
        return time.perf_counter() - start

    # Lower bounds only: the sleep the server performs (0, 0.3, 0.6 s) plus a scrypt check.
    waited = [attempt() for _ in range(3)]
    assert waited[1] >= 0.3 and waited[2] >= 0.6, waited
    assert slowed.login_delay_for("alice") == pytest.approx(1.2)


def test_authenticate_accepts_the_right_password(auth, alice) -> None:
    assert run_async(auth.authenticate("alice", PASSWORD))


# -- management --------------------------------------------------------------------------------


def test_admin_adds_a_user_who_can_sign_in(auth, users, store, root) -> None:
    added = users.add_user(root, "carol", "carol-pass-1", "staff")
    assert (added.name, added.role) == ("carol", "staff")
    assert auth.check_login("carol", "carol-pass-1")
    [entry] = [e for e in store.list_audit(action="user.add") if e.target == "carol"]
    assert (entry.actor, entry.detail) == ("root", "role=staff")


@pytest.mark.parametrize(
    ("call", "message", "action", "target"),
    [
        (lambda us, au, u: us.add_user(u, "carol", "carol-pass-1", "staff"), "add users",
         "user.add", "carol"),
        (lambda us, au, u: us.set_role(u, "root", "staff"), "change roles", "user.role", "root"),
        (lambda us, au, u: us.set_disabled(u, "root", True), "disable users", "user.disable",
         "root"),
        (lambda us, au, u: us.set_disabled(u, "root", False), "enable users", "user.enable",
         "root"),
        (lambda us, au, u: us.set_password(u, "root", "new-pass-123"), "set passwords",
         "user.passwd", "root"),
        (lambda us, au, u: us.list_users(u), "list users", "user.list", ""),
        (lambda us, au, u: au.read(u), "read the audit log", "audit.read", ""),
        (lambda us, au, u: au.export_csv(u), "export the audit log", "audit.export", ""),
    ],
)  # fmt: skip
def test_staff_may_not_manage_accounts_and_each_refusal_is_audited(
    users, audit, store, root, alice, call, message, action, target
) -> None:
    before, rows = store.list_users(), store.list_audit(limit=1000)
    with pytest.raises(PermissionDenied, match=message):
        call(users, audit, alice)
    with pytest.raises(PermissionDenied, match="Sign in"):
        call(users, audit, None)
    assert store.list_users() == before
    new = [(e.actor, e.action, e.target, e.outcome) for e in store.list_audit(limit=1000)]
    assert new[:2] == [("?", action, target, "refused"), ("alice", action, target, "refused")]
    assert len(new) == len(rows) + 2
    refused = audit.read(root, AuditFilter(actor="alice", outcome="refused")).entries
    assert [(e.action, e.detail) for e in refused] == [
        (action, f"Only an admin may {message}; alice is staff.")
    ]


def test_a_refused_target_is_cut_and_made_storable(users, store, alice) -> None:
    with pytest.raises(PermissionDenied):
        users.add_user(alice, "\ud800" + "x" * 500, "carol-pass-1", "staff")
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
    users, store, root, alice, name, password, role, message
) -> None:
    count = store.count_users()
    with pytest.raises(AccountError, match=message):
        users.add_user(root, name, password, role)
    assert store.count_users() == count


def test_admin_cannot_demote_or_disable_themself(users, store, root) -> None:
    with pytest.raises(AccountError, match="own admin role"):
        users.set_role(root, "root", "staff")
    with pytest.raises(AccountError, match="own account"):
        users.set_disabled(root, "root", True)
    record = store.get_user_by_name("root")
    assert (record.role, record.disabled) == ("admin", False)


def test_role_change_takes_effect_on_the_next_request(auth, users, root, alice) -> None:
    users.set_role(root, "alice", "admin")
    assert auth.resolve("alice").is_admin
    users.set_role(root, "alice", "staff")
    assert not auth.resolve("alice").is_admin


def test_changes_to_an_unknown_user_name_it(users, root) -> None:
    with pytest.raises(AccountError, match="no user named 'ghost'"):
        users.set_disabled(root, "ghost", True)


def test_admin_sets_a_password(auth, users, store, root, alice) -> None:
    users.set_password(root, "alice", "brand-new-pass")
    assert auth.check_login("alice", "brand-new-pass")
    assert not auth.check_login("alice", PASSWORD)
    assert [e.actor for e in store.list_audit(action="user.passwd")] == ["root"]


# -- audit log -----------------------------------------------------------------------------


def test_audit_log_is_newest_first_and_pages(audit, store, root) -> None:
    for index in range(7):
        store.audit(actor="x", action=f"a{index}")
    first = audit.read(root, AuditFilter(actor="x"), page=1, per_page=3)
    last = audit.read(root, AuditFilter(actor="x"), page=3, per_page=3)
    assert [e.action for e in first.entries] == ["a6", "a5", "a4"]
    assert first.has_next
    assert ([e.action for e in last.entries], last.has_next) == (["a0"], False)


def test_audit_log_filters_combine(auth, audit, store, root, alice) -> None:
    auth.check_login("alice", "wrong-password")
    auth.check_login("alice", PASSWORD)
    shown = audit.read(root, AuditFilter(actor="alice", action="login", outcome="failed"))
    assert [(e.actor, e.outcome) for e in shown.entries] == [("alice", "failed")]


def test_audit_log_since_a_date(audit, store, root) -> None:
    store.audit(actor="x", action="today")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert audit.read(root, AuditFilter(since=tomorrow)).entries == ()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert "today" in [e.action for e in audit.read(root, AuditFilter(since=today)).entries]


@pytest.mark.parametrize(
    ("filters", "message"),
    [(AuditFilter(since="last week"), "'last week'"), (AuditFilter(outcome="maybe"), "'maybe'")],
)
def test_bad_audit_filters_say_which_value(audit, root, filters, message) -> None:
    with pytest.raises(ValueError, match=message):
        audit.read(root, filters)


def test_audit_csv_has_every_matching_row_and_is_itself_audited(audit, store, root) -> None:
    for index in range(1205):  # more than one export batch
        store.audit(actor="bulk", action="thing", target=f"t{index}")
    rows = list(csv.reader(io.StringIO(audit.export_csv(root, AuditFilter(actor="bulk")))))
    assert rows[0] == ["when", "who", "action", "target", "outcome", "detail"]
    assert len(rows) == 1206
    assert rows[1][3] == "t1204"  # newest first
    [export] = store.list_audit(action="audit.export")
    assert (export.actor, export.detail) == ("root", "1205 entries; actor=bulk")


def test_audit_csv_defuses_spreadsheet_formulas(auth, audit, store, root) -> None:
    auth.check_login('=HYPERLINK("http://evil")', "pw")
    text = audit.export_csv(root, AuditFilter(action="login"))
    who = list(csv.reader(io.StringIO(text)))[1][1]
    assert who == '\'=HYPERLINK("http://evil")'
