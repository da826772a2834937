"""Accounts over a real SQLite store: sessions that end, one identity per name, parallel logins."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.auth import (
    CLI,
    LOCKOUT_AFTER_FAILURES,
    Authentication,
    User,
    UserAdmin,
    login_delay_s,
)
from backend.store.database import Store


def run_async(coroutine):
    """Run a coroutine on a fresh loop in a thread (a Playwright session may hold this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def root(users: UserAdmin) -> User:
    return users.add_user(CLI, "root", "root-pass-123", "admin")


def test_any_case_of_a_name_resolves_to_one_user(auth, bob) -> None:
    assert auth.resolve("BOB") == auth.resolve("Bob") == bob
    assert auth.resolve("BOB").name == "bob"


def test_another_users_ending_leaves_a_session_valid(auth, users, alice, bob) -> None:
    stamp = auth.session_stamp()
    assert auth.resolve("BOB", stamp) == bob
    users.set_password(CLI, "alice", "brand-new-pass")  # advances the shared clock
    assert auth.resolve("bob", stamp) == bob
    assert auth.resolve("alice", stamp) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda users, root: users.set_password(root, "BOB", "brand-new-pass"),
        lambda users, root: users.set_role(root, "bob", "admin"),
        lambda users, root: users.set_disabled(root, "bob", True),
        lambda users, root: users.set_password(CLI, "bob", "brand-new-pass"),
        lambda users, root: users.set_disabled(CLI, "bob", True),
    ],
)
def test_password_role_and_disable_end_the_users_sessions(auth, users, root, bob, change) -> None:
    old = auth.session_stamp()
    roots = auth.session_stamp()
    change(users, root)
    assert auth.resolve("bob", old) is None
    assert auth.resolve("root", roots) == root  # only that user's sessions end


def test_a_session_begun_after_the_change_is_valid(auth, users, root, bob) -> None:
    users.set_password(root, "bob", "brand-new-pass")
    assert auth.resolve("bob", auth.session_stamp()) == bob


def test_a_login_checked_while_the_password_changes_gets_an_ended_session(
    auth, users, root, bob
) -> None:
    stamp = auth.session_stamp()  # read when the login began, before its check
    assert auth.check_login("bob", "bob-pass-1234")
    users.set_password(root, "bob", "brand-new-pass")  # lands before the token is handed out
    assert auth.resolve("bob", stamp) is None


def test_setting_the_same_role_again_leaves_sessions_alone(auth, users, store, root, bob) -> None:
    stamp = auth.session_stamp()
    users.set_role(root, "bob", "staff")
    assert auth.resolve("bob", stamp) == bob
    assert store.list_audit(action="user.role")[0].detail == "role=staff"


def test_enabling_does_not_end_sessions(auth, users, root, bob) -> None:
    stamp = auth.session_stamp()
    users.set_disabled(root, "bob", False)
    assert auth.resolve("bob", stamp) == bob


def test_signing_out_any_case_ends_every_session_of_the_account(auth, store, bob) -> None:
    lower, upper = auth.session_stamp(), auth.session_stamp()
    assert auth.sign_out("BOB", upper) == bob
    assert auth.resolve("bob", lower) is None
    assert auth.resolve("BOB", upper) is None
    [entry] = store.list_audit(action="logout")
    assert (entry.actor, entry.outcome) == ("bob", "ok")


def test_signing_out_an_ended_session_does_nothing(auth, users, store, root, bob) -> None:
    stamp = auth.session_stamp()
    users.set_password(root, "bob", "brand-new-pass")
    assert auth.sign_out("bob", stamp) is None
    assert store.list_audit(action="logout") == []


def test_a_refused_login_is_audited_under_the_accounts_own_name(auth, store, bob) -> None:
    auth.refuse_login("BOB", "sign-in sent from another site: http://evil.example")
    auth.refuse_login("", "sign-in sent from another site: null")
    refused = [(e.actor, e.outcome) for e in store.list_audit(action="login")][::-1]
    assert refused == [("bob", "refused"), ("?", "refused")]


def test_parallel_wrong_guesses_take_turns_and_lock_out(store: Store, bob) -> None:
    slowed = Authentication(store, login_delay_base_s=0.2, login_delay_max_s=1.6)

    async def guesses() -> list[bool]:
        names = ["bob", "BOB", "Bob", "bOb", "boB"]  # one account, whatever the case
        return await asyncio.gather(*(slowed.authenticate(n, "wrong-guess") for n in names))

    start = time.perf_counter()
    assert run_async(guesses()) == [False] * LOCKOUT_AFTER_FAILURES
    elapsed = time.perf_counter() - start
    assert elapsed >= sum(login_delay_s(n, 0.2, 1.6) for n in range(LOCKOUT_AFTER_FAILURES))
    assert not run_async(slowed.authenticate("bob", "bob-pass-1234"))
    outcomes = [e.outcome for e in store.list_audit(actor="bob", action="login")][::-1]
    assert outcomes == ["failed"] * LOCKOUT_AFTER_FAILURES + ["refused"]
