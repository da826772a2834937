"""API keys over a real SQLite store: made once, stored hashed, own keys only, audited."""

from __future__ import annotations

import hashlib

import pytest

from backend.auth import CLI, AccountError, ApiKeyRefused, ApiKeys, PermissionDenied, User
from backend.auth.api_keys import KEY_PREFIX, MAX_ACTIVE_KEYS


@pytest.fixture
def keys(store) -> ApiKeys:
    return ApiKeys(store)


@pytest.fixture
def admin(users) -> User:
    return users.add_user(CLI, "root", "root-pass-123", "admin")


def _audit(store, action: str) -> list[tuple[str, str, str]]:
    return [(e.actor, e.outcome, e.target) for e in store.list_audit(action=action)][::-1]


def test_a_key_is_shown_once_and_stored_only_as_a_hash(store, keys, alice):
    made = keys.create(alice, "  laptop   editor ")
    assert made.secret.startswith(KEY_PREFIX) and len(made.secret) == len(KEY_PREFIX) + 43
    assert made.info.name == "laptop editor" and made.secret.startswith(made.info.prefix)
    (row,) = store.list_api_keys(alice.id)
    assert row.secret_hash == hashlib.sha256(made.secret.encode()).hexdigest()
    assert made.secret not in store.path.read_bytes().decode("latin-1")
    assert _audit(store, "api_key.create") == [("alice", "ok", made.info.prefix)]


def test_a_key_resolves_to_its_owner_and_records_its_use(store, keys, alice):
    made = keys.create(alice, "script")
    assert keys.list_own(alice)[0].last_used_at is None
    assert keys.resolve(f"Bearer {made.secret}") == alice
    assert keys.list_own(alice)[0].last_used_at is not None


@pytest.mark.parametrize(
    "header", [None, "", "Basic abc", "Bearer ", "Bearer sk-123", "Bearer hearth-\x00"]
)
def test_a_missing_or_foreign_key_is_refused(keys, header):
    with pytest.raises(ApiKeyRefused):
        keys.resolve(header)


def test_a_key_with_a_wrong_secret_but_a_real_prefix_is_refused(keys, alice):
    made = keys.create(alice, "x")
    forged = made.secret[:-4] + ("AAAA" if not made.secret.endswith("AAAA") else "BBBB")
    with pytest.raises(ApiKeyRefused, match="Unknown"):
        keys.resolve(f"Bearer {forged}")


def test_revoked_disabled_and_switched_off_keys_stop_at_once(store, keys, users, alice, admin):
    made = keys.create(alice, "x")
    keys.set_role_access(admin, "staff", False)
    with pytest.raises(ApiKeyRefused, match="switched off for role staff"):
        keys.resolve(f"Bearer {made.secret}")
    keys.set_role_access(admin, "staff", True)
    users.set_disabled(CLI, "alice", True)
    with pytest.raises(ApiKeyRefused, match="disabled"):
        keys.resolve(f"Bearer {made.secret}")
    users.set_disabled(CLI, "alice", False)
    keys.revoke(alice, made.info.id)
    with pytest.raises(ApiKeyRefused, match="revoked"):
        keys.resolve(f"Bearer {made.secret}")
    assert [o for _, o, _ in _audit(store, "api.auth")] == ["refused"] * 3


def test_staff_revoke_only_their_own_keys_and_admins_anyones(store, keys, alice, bob, admin):
    theirs = keys.create(bob, "bob's").info
    with pytest.raises(AccountError, match="no API key"):
        keys.revoke(alice, theirs.id)
    assert keys.list_own(bob)[0].active
    assert keys.revoke(admin, str(theirs.id)).revoked_at is not None
    assert _audit(store, "api_key.revoke") == [
        ("alice", "refused", str(theirs.id)), ("root", "ok", theirs.prefix)]  # fmt: skip


def test_only_admins_list_everyones_keys_and_switch_access(store, keys, alice, bob, admin):
    keys.create(alice, "a")
    keys.create(bob, "b")
    assert [k.user for k in keys.list_own(alice)] == ["alice"]
    assert sorted(k.user for k in keys.list_all(admin)) == ["alice", "bob"]
    with pytest.raises(PermissionDenied):
        keys.list_all(alice)
    with pytest.raises(PermissionDenied):
        keys.set_role_access(alice, "staff", False)
    assert keys.role_access() == {"admin": True, "staff": True}
    assert _audit(store, "api.access") == [("alice", "refused", "staff")]


@pytest.mark.parametrize("name", ["", "   ", None, 5, "x" * 65, "tab\x00"])
def test_a_bad_key_name_is_refused_and_audited(store, keys, alice, name):
    with pytest.raises(AccountError):
        keys.create(alice, name)
    assert store.list_api_keys(alice.id) == []
    assert [o for _, o, _ in _audit(store, "api_key.create")] == ["refused"]


def test_a_person_has_at_most_so_many_active_keys(keys, alice):
    made = [keys.create(alice, f"k{i}") for i in range(MAX_ACTIVE_KEYS)]
    with pytest.raises(AccountError, match="revoke one"):
        keys.create(alice, "one more")
    keys.revoke(alice, made[0].info.id)
    assert keys.create(alice, "one more").info.active
