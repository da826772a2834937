"""Users table of the store, against a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.store.database import Store, StoreError, UserExists, UserNotFound


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "hearth.db") as store:
        yield store


def test_create_user_returns_the_stored_record(store: Store) -> None:
    user = store.create_user("alice", "admin", "scrypt$abc")
    assert (user.name, user.role, user.password_hash) == ("alice", "admin", "scrypt$abc")
    assert (user.disabled, user.failed_logins, user.locked_until) == (False, 0, None)
    assert user.created_at.endswith("+00:00")


def test_create_user_strips_the_name(store: Store) -> None:
    assert store.create_user("  bob ", "staff", "h").name == "bob"


def test_duplicate_name_raises_user_exists_naming_it(store: Store) -> None:
    store.create_user("alice", "staff", "h")
    with pytest.raises(UserExists, match="'Alice'"):
        store.create_user("Alice", "staff", "h")


def test_user_exists_is_a_store_error(store: Store) -> None:
    store.create_user("alice", "staff", "h")
    with pytest.raises(StoreError):
        store.create_user("alice", "staff", "h")


def test_create_user_rejects_unknown_role(store: Store) -> None:
    with pytest.raises(ValueError, match="'root'"):
        store.create_user("alice", "root", "h")


def test_create_user_rejects_empty_name(store: Store) -> None:
    with pytest.raises(ValueError, match="empty"):
        store.create_user("   ", "staff", "h")


def test_get_user_by_id(store: Store) -> None:
    created = store.create_user("alice", "staff", "h")
    assert store.get_user(created.id) == created


def test_get_missing_user_is_none(store: Store) -> None:
    assert store.get_user(999) is None
    assert store.get_user_by_name("nobody") is None


def test_get_user_by_name_ignores_case(store: Store) -> None:
    created = store.create_user("Alice", "staff", "h")
    assert store.get_user_by_name("alice") == created


def test_list_and_count_users_in_creation_order(store: Store) -> None:
    names = ["carol", "alice", "bob"]
    for name in names:
        store.create_user(name, "staff", "h")
    assert [u.name for u in store.list_users()] == names
    assert store.count_users() == 3


def test_update_user_changes_only_given_fields(store: Store) -> None:
    user = store.create_user("alice", "staff", "old")
    updated = store.update_user(user.id, role="admin", failed_logins=3)
    assert (updated.role, updated.failed_logins) == ("admin", 3)
    assert (updated.password_hash, updated.disabled, updated.name) == ("old", False, "alice")


def test_update_user_disables_and_sets_password(store: Store) -> None:
    user = store.create_user("alice", "staff", "old")
    updated = store.update_user(user.id, disabled=True, password_hash="new")
    assert store.get_user(user.id) == updated
    assert (updated.disabled, updated.password_hash) == (True, "new")


def test_update_user_sets_and_clears_lock(store: Store) -> None:
    user = store.create_user("alice", "staff", "h")
    locked = store.update_user(user.id, locked_until="2030-01-01T10:00:00+01:00")
    assert locked.locked_until == "2030-01-01T09:00:00.000000+00:00"
    assert store.update_user(user.id, failed_logins=0).locked_until == locked.locked_until
    assert store.update_user(user.id, locked_until=None).locked_until is None


def test_update_user_rejects_unknown_role(store: Store) -> None:
    user = store.create_user("alice", "staff", "h")
    with pytest.raises(ValueError, match="'owner'"):
        store.update_user(user.id, role="owner")
    assert store.get_user(user.id) == user


def test_update_missing_user_raises(store: Store) -> None:
    with pytest.raises(UserNotFound, match="User 42 was not found"):
        store.update_user(42, disabled=True)


def test_users_survive_reopening(tmp_path: Path) -> None:
    with Store(tmp_path / "hearth.db") as store:
        created = store.create_user("alice", "admin", "h")
    with Store(tmp_path / "hearth.db") as store:
        assert store.get_user_by_name("alice") == created


def test_closed_store_raises_a_readable_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "hearth.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count_users()
