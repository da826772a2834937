"""Personal API keys: made, listed and revoked by their owner; checked on every API request.

A key is `hearth-` and 43 URL-safe characters (32 random bytes). Only its first characters (the
prefix, which finds the row) and the SHA-256 of the whole key are stored; the key is shown once,
when it is made. SHA-256 is right here, unlike for passwords: a 256-bit random secret cannot be
guessed, so a slow hash would only slow every request. The hash is compared in constant time.

Every request re-reads the key's row with its owner: a revoked key, a disabled owner or a role
whose API access an admin switched off is refused at once. Making and revoking keys and
switching a role's access are audited ('api_key.create', 'api_key.revoke', 'api.access'), with
refusals; a refused use of a real key is audited as 'api.auth'. Unknown keys are not (a scanner
would fill the log); they get the same 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.auth.refusals import cut, require_admin_audited
from backend.auth.types import ROLES, AccountError, PermissionDenied, User
from backend.store.database import ApiKeyNotFound, ApiKeyRecord, Store, StoreError

KEY_PREFIX = "hearth-"
PREFIX_CHARS = len(KEY_PREFIX) + 8  # "hearth-" and 8 random characters: the row's public id
MAX_NAME_CHARS = 64
MAX_ACTIVE_KEYS = 20  # per user; revoke one to make another
TOUCH_EVERY_S = 60  # last_used_at is kept to the minute: no write on every request
ACCESS_SETTING = "api_access"  # settings table: {"admin": bool, "staff": bool}; default all on
_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class ApiKeyRefused(PermissionDenied):
    """The request's key does not open the API; the message says why, in words."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """A key as its owner (or an admin) sees it: never the secret."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewApiKey:
    info: ApiKeyInfo
    secret: str  # the whole key: shown once, never stored


def _info(record: ApiKeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo(record.id, record.user, record.name, record.prefix, record.created_at,
                      record.last_used_at, record.revoked_at)  # fmt: skip


def _stale(last_used_at: str | None) -> bool:
    if last_used_at is None:
        return True
    age = datetime.now(UTC) - datetime.fromisoformat(last_used_at)
    return age.total_seconds() >= TOUCH_EVERY_S


def _sent(value: object) -> str:
    """A value a caller sent, as an audit row and a message name it: cut short, with a lone
    surrogate escaped (SQLite cannot store one; the page refuses them, a direct call may not)."""
    return cut(str(value).encode("utf-8", "backslashreplace").decode("utf-8"))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _key_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise AccountError("Give the key a name, e.g. the tool or machine that will use it.")
    name = " ".join(name.split())
    if len(name) > MAX_NAME_CHARS:
        raise AccountError(f"A key name has at most {MAX_NAME_CHARS} characters; got {len(name)}.")
    if any(not ch.isprintable() or 0xD800 <= ord(ch) <= 0xDFFF for ch in name):
        raise AccountError("A key name may hold only printable characters.")
    return name


class ApiKeys:
    """Users' API keys over the store; every change and refusal is audited."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- the owner's keys -------------------------------------------------------------------

    def create(self, user: User | None, name: object) -> NewApiKey:
        """A new key for the acting user; its secret is in the result and nowhere else."""
        if user is None:
            raise PermissionDenied("Sign in to make an API key.")
        try:
            name = _key_name(name)
            self._check_room(user)
            if not self.role_access().get(user.role, True):
                raise PermissionDenied(f"API access is switched off for role {user.role}.")
        except (AccountError, PermissionDenied) as refused:
            self._audit(user, "api_key.create", _sent(name), "refused", str(refused))
            raise
        for _ in range(3):  # a clash of 48 random bits: practically never; try again if so
            secret = KEY_PREFIX + secrets.token_urlsafe(32)
            try:
                record = self._store.add_api_key(user.id, name, secret[:PREFIX_CHARS],
                                                 key_hash(secret))  # fmt: skip
                break
            except StoreError:
                continue
        else:
            raise AccountError("The key could not be stored; try again.")
        self._audit(user, "api_key.create", record.prefix, "ok", f"name={name}")
        return NewApiKey(_info(record), secret)

    def _check_room(self, user: User) -> None:
        active = [k for k in self._store.list_api_keys(user.id) if k.revoked_at is None]
        if len(active) >= MAX_ACTIVE_KEYS:
            raise AccountError(
                f"You have {len(active)} active keys, the most one person may have; "
                "revoke one you no longer use first."
            )

    def list_own(self, user: User | None) -> list[ApiKeyInfo]:
        if user is None:
            return []
        return [_info(record) for record in self._store.list_api_keys(user.id)]

    def revoke(self, user: User | None, key_id: object) -> ApiKeyInfo:
        """Revoke one of the acting user's keys; an admin may revoke anyone's."""
        if user is None:
            raise PermissionDenied("Sign in to revoke an API key.")
        record = self._find(key_id)
        if record is None or (record.user_id != user.id and not user.is_admin):
            # Another person's key looks exactly like a missing one.
            self._audit(user, "api_key.revoke", _sent(key_id), "refused", "no such key")
            raise AccountError(f"There is no API key {_sent(key_id)!r} of yours.")
        revoked = self._store.revoke_api_key(record.id)
        self._audit(user, "api_key.revoke", record.prefix, "ok",
                    f"name={record.name}; owner={record.user}")  # fmt: skip
        return _info(revoked)

    def _find(self, key_id: object) -> ApiKeyRecord | None:
        if isinstance(key_id, str) and key_id.strip().isdigit() and len(key_id.strip()) < 19:
            key_id = int(key_id.strip())
        if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 < key_id < 2**63:
            return None
        try:
            return self._store.get_api_key(key_id)
        except ApiKeyNotFound:
            return None

    # -- admins ---------------------------------------------------------------------------

    def list_all(self, actor: User | None) -> list[ApiKeyInfo]:
        require_admin_audited(self._store, actor, "list everyone's API keys", action="api_key.list")
        return [_info(record) for record in self._store.list_api_keys()]

    def role_access(self) -> dict[str, bool]:
        """Whether each role may use the API (on unless an admin switched it off)."""
        stored = self._store.get_setting(ACCESS_SETTING, {})
        stored = stored if isinstance(stored, dict) else {}
        return {role: stored.get(role) is not False for role in ROLES}

    def set_role_access(self, actor: User | None, role: object, enabled: object) -> dict[str, bool]:
        admin = require_admin_audited(self._store, actor, "switch API access",
                                      action="api.access", target=cut(str(role)))  # fmt: skip
        if role not in ROLES:
            raise AccountError(f"Role must be one of {', '.join(ROLES)}, not {cut(str(role))!r}.")
        if not isinstance(enabled, bool):
            raise AccountError(f"API access is on or off (true or false), not {enabled!r}.")
        access = {**self.role_access(), str(role): enabled}
        self._store.set_setting(ACCESS_SETTING, access)
        self._audit(admin, "api.access", str(role), "ok", "on" if enabled else "off")
        return access

    # -- a request ------------------------------------------------------------------------

    def resolve(self, authorization: str | None) -> User:
        """The key's owner for an `Authorization: Bearer hearth-...` header, or ApiKeyRefused."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiKeyRefused("Send your Hearth API key as 'Authorization: Bearer hearth-…'.")
        if not key.startswith(KEY_PREFIX) or len(key) > 200 or not set(key) <= _KEY_CHARS:
            raise ApiKeyRefused("That is not a Hearth API key; make one in Hearth's API tab.")
        record = self._store.api_key_by_prefix(key[:PREFIX_CHARS])
        if record is None or not hmac.compare_digest(record.secret_hash, key_hash(key)):
            raise ApiKeyRefused("Unknown API key; make one in Hearth's API tab.")
        user = User(record.user_id, record.user, record.role)  # type: ignore[arg-type]
        refusal = self._refusal(record)
        if refusal:
            self._audit(user, "api.auth", record.prefix, "refused", refusal)
            raise ApiKeyRefused(refusal)
        if _stale(record.last_used_at):
            self._store.touch_api_key(record.id)
        return user

    def _refusal(self, record: ApiKeyRecord) -> str:
        if record.revoked_at is not None:
            return f"This API key ({record.prefix}…) was revoked at {record.revoked_at[:19]} UTC."
        if record.user_disabled:
            return f"The account {record.user!r} is disabled."
        if not self.role_access().get(record.role, True):
            return f"API access is switched off for role {record.role}."
        return ""

    def _audit(self, user: User, action: str, target: str, outcome: str, detail: str) -> None:
        self._store.audit(actor=user.name, action=action, target=target, outcome=outcome,
                          detail=detail)  # fmt: skip
