"""Accounts over a real SQLite store: sessions that end, one identity per name, parallel logins."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.auth.accounts import LOCKOUT_AFTER_FAILURES, Accounts, User, login_delay_s
from backend.store.database import Store


def run_async(coroutine):
    """Run a coroutine on a fresh loop in a thread (a Playwright session may hold this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def root(accounts: Accounts) -> User:
    return accounts.add_user_cli("root", "root-pass-123", "admin")


def test_any_case_of_a_name_resolves_to_one_user(accounts, bob) -> None:
    assert accounts.resolve("BOB") == accounts.resolve("Bob") == bob
    assert accounts.resolve("BOB").name == "bob"


def test_another_users_ending_leaves_a_session_valid(accounts, alice, bob) -> None:
    stamp = accounts.session_stamp()
    assert accounts.resolve("BOB", stamp) == bob
    accounts.set_password_cli("alice", "brand-new-pass")  # advances the shared clock
    assert accounts.resolve("bob", stamp) == bob
    assert accounts.resolve("alice", stamp) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda a, root: a.set_password(root, "BOB", "brand-new-pass"),
        lambda a, root: a.set_role(root, "bob", "admin"),
        lambda a, root: a.set_disabled(root, "bob", True),
        lambda a, root: a.set_password_cli("bob", "brand-new-pass"),
        lambda a, root: a.set_disabled_cli("bob", True),
    ],
)
def test_password_role_and_disable_end_the_users_sessions(accounts, root, bob, change) -> None:
    old = accounts.session_stamp()
    roots = accounts.session_stamp()
    change(accounts, root)
    assert accounts.resolve("bob", old) is None
    assert accounts.resolve("root", roots) == root  # only that user's sessions end


def test_a_session_begun_after_the_change_is_valid(accounts, root, bob) -> None:
    accounts.set_password(root, "bob", "brand-new-pass")
    assert accounts.resolve("bob", accounts.session_stamp()) == bob


def test_a_login_checked_while_the_password_changes_gets_an_ended_session(
    accounts, root, bob
) -> None:
    stamp = accounts.session_stamp()  # read when the login began, before its check
    assert accounts.check_login("bob", "bob-pass-1234")
    accounts.set_password(root, "bob", "brand-new-pass")  # lands before the token is handed out
    assert accounts.resolve("bob", stamp) is None


def test_setting_the_same_role_again_leaves_sessions_alone(accounts, store, root, bob) -> None:
    stamp = accounts.session_stamp()
    accounts.set_role(root, "bob", "staff")
    assert accounts.resolve("bob", stamp) == bob
    assert store.list_audit(action="user.role")[0].detail == "role=staff"


def test_enabling_does_not_end_sessions(accounts, root, bob) -> None:
    stamp = accounts.session_stamp()
    accounts.set_disabled(root, "bob", False)
    assert accounts.resolve("bob", stamp) == bob


def test_signing_out_any_case_ends_every_session_of_the_account(accounts, store, bob) -> None:
    lower, upper = accounts.session_stamp(), accounts.session_stamp()
    assert accounts.sign_out("BOB", upper) == bob
    assert accounts.resolve("bob", lower) is None
    assert accounts.resolve("BOB", upper) is None
    [entry] = store.list_audit(action="logout")
    assert (entry.actor, entry.outcome) == ("bob", "ok")


def test_signing_out_an_ended_session_does_nothing(accounts, store, root, bob) -> None:
    stamp = accounts.session_stamp()
    accounts.set_password(root, "bob", "brand-new-pass")
    assert accounts.sign_out("bob", stamp) is None
    assert store.list_audit(action="logout") == []


def test_a_refused_login_is_audited_under_the_accounts_own_name(accounts, store, bob) -> None:
    accounts.refuse_login("BOB", "sign-in sent from another site: http://evil.example")
    accounts.refuse_login("", "sign-in sent from another site: null")
    refused = [(e.actor, e.outcome) for e in store.list_audit(action="login")][::-1]
    assert refused == [("bob", "refused"), ("?", "refused")]


def test_parallel_wrong_guesses_take_turns_and_lock_out(store: Store, bob) -> None:
    slowed = Accounts(store, login_delay_base_s=0.2, login_delay_max_s=1.6)

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
