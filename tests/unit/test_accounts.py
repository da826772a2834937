"""Pure account logic: password hashes, the login back-off, the admin check."""

from __future__ import annotations

import pytest

from backend.auth import (
    LOGIN_DELAY_BASE_S,
    LOGIN_DELAY_MAX_S,
    PermissionDenied,
    User,
    hash_password,
    login_delay_s,
    require_admin,
    verify_password,
)

ADMIN = User(1, "root", "admin")
STAFF = User(2, "sam", "staff")


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("", stored)


def test_hash_is_salted_and_never_contains_the_password() -> None:
    first, second = hash_password("same-password"), hash_password("same-password")
    assert first != second
    assert "same-password" not in first
    assert first.startswith("scrypt$")


@pytest.mark.parametrize(
    "stored", ["", "plain-text", "bcrypt$1$2$3$aa$bb", "scrypt$x$8$1$zz$yy", "scrypt$16384"]
)
def test_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_no_delay_before_the_first_failure() -> None:
    assert login_delay_s(0, LOGIN_DELAY_BASE_S, LOGIN_DELAY_MAX_S) == 0


def test_delay_doubles_with_each_failure_up_to_the_cap() -> None:
    delays = [login_delay_s(n, 0.25, 2.0) for n in range(1, 8)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_zero_base_turns_the_delay_off() -> None:
    assert login_delay_s(10, 0, 2.0) == 0


def test_require_admin_returns_the_admin() -> None:
    assert require_admin(ADMIN, "do it") is ADMIN


def test_require_admin_names_the_action_and_the_role() -> None:
    with pytest.raises(PermissionDenied, match=r"Only an admin may add users; sam is staff\."):
        require_admin(STAFF, "add users")


def test_require_admin_refuses_anonymous() -> None:
    with pytest.raises(PermissionDenied, match="Sign in to add users"):
        require_admin(None, "add users")
