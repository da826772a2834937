"""Users, scrypt password hashes, roles, login throttling; the acting User of every service call."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from backend.store import Store, UserExists, UserRecord

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
MIN_PASSWORD_LENGTH = 8
LOCKOUT_AFTER_FAILURES = 5
LOCKOUT_S = 300
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

# scrypt parameters: n=2**14, r=8 costs 16 MiB and ~50 ms per hash (OWASP's minimum is n=2**17
# at r=8 for scrypt as a password KDF; we trade some of that for login latency on a 2-core box).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32


class AccountError(ValueError):
    """A user-facing account problem (bad name, weak password, unknown user)."""


class PermissionDenied(PermissionError):
    """The acting user may not do this."""


@dataclass(frozen=True)
class User:
    """The acting user, resolved from the login session; every service call takes one."""

    id: int
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest_hex)
        actual = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def require_admin(user: User | None, action: str) -> User:
    """Return the user if an admin; otherwise raise PermissionDenied naming the action."""
    if user is None:
        raise PermissionDenied(f"Sign in to {action}.")
    if not user.is_admin:
        raise PermissionDenied(f"Only an admin may {action}; {user.name} is {user.role}.")
    return user


def _now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    """User management and login checks over the store; every change is audited."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))
        self._login_lock = threading.Lock()

    # -- sessions ------------------------------------------------------------------------

    def authenticate(self, name: str, password: str) -> bool:
        """Gradio's auth callable: True when the login may proceed. Throttled and audited."""
        record = self._store.get_user_by_name(name or "")
        if record is None:
            verify_password(password, self._dummy_hash)  # same cost as a real check
            self._store.audit(
                actor=name or "?", action="login", outcome="failed", detail="unknown user"
            )
            return False
        if record.disabled:
            self._store.audit(actor=name, action="login", outcome="refused", detail="disabled")
            return False
        if record.locked_until and datetime.fromisoformat(record.locked_until) > _now():
            self._store.audit(
                actor=name,
                action="login",
                outcome="refused",
                detail=f"locked until {record.locked_until}",
            )
            return False
        ok = verify_password(password, record.password_hash)
        with self._login_lock:
            self._record_attempt(record, ok)
        return ok

    def _record_attempt(self, record: UserRecord, ok: bool) -> None:
        if ok:
            self._store.update_user(record.id, failed_logins=0, locked_until=None)
            self._store.audit(actor=record.name, action="login", outcome="ok")
            return
        failures = (self._store.get_user(record.id) or record).failed_logins + 1
        locked_until = None
        if failures >= LOCKOUT_AFTER_FAILURES:
            locked_until = (_now() + timedelta(seconds=LOCKOUT_S)).isoformat()
        self._store.update_user(record.id, failed_logins=failures, locked_until=locked_until)
        detail = f"{failures} failed attempt(s)"
        if locked_until:
            detail += f"; locked until {locked_until}"
        self._store.audit(actor=record.name, action="login", outcome="failed", detail=detail)

    def resolve(self, name: str | None) -> User | None:
        """The User for a logged-in session name; None for anonymous or disabled users."""
        if not name:
            return None
        record = self._store.get_user_by_name(name)
        if record is None or record.disabled:
            return None
        return User(record.id, record.name, record.role)  # type: ignore[arg-type]

    # -- management ----------------------------------------------------------------------

    def ensure_first_admin(self, password: str | None = None) -> str | None:
        """Create an 'admin' user when there is none; return the password to print once."""
        if self._store.count_users() > 0:
            return None
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        self._create("admin", password, "admin", actor="system")
        return password if generated else None

    def add_user(self, actor: User | None, name: str, password: str, role: Role) -> User:
        require_admin(actor, "add users")
        return self._create(name, password, role, actor=actor.name)  # type: ignore[union-attr]

    def add_user_cli(self, name: str, password: str, role: Role) -> User:
        """For `app.py users add`: whoever runs the CLI owns the box."""
        return self._create(name, password, role, actor="cli")

    def _create(self, name: str, password: str, role: Role, *, actor: str) -> User:
        _check_name(name)
        _check_password(password)
        _check_role(role)
        try:
            record = self._store.create_user(name, role, hash_password(password))
        except UserExists as exc:
            raise AccountError(f"A user named '{name}' already exists.") from exc
        self._store.audit(actor=actor, action="user.add", target=name, detail=f"role={role}")
        return User(record.id, record.name, role)

    def list_users(self, actor: User | None) -> list[UserRecord]:
        require_admin(actor, "list users")
        return self._store.list_users()

    def list_users_cli(self) -> list[UserRecord]:
        return self._store.list_users()

    def set_role(self, actor: User | None, name: str, role: Role) -> None:
        admin = require_admin(actor, "change roles")
        _check_role(role)
        record = self._record(name)
        if record.id == admin.id and role != "admin":
            raise AccountError("You cannot remove your own admin role.")
        self._store.update_user(record.id, role=role)
        self._store.audit(actor=admin.name, action="user.role", target=name, detail=f"role={role}")

    def set_disabled(self, actor: User | None, name: str, disabled: bool) -> None:
        admin = require_admin(actor, "disable users")
        record = self._record(name)
        if record.id == admin.id and disabled:
            raise AccountError("You cannot disable your own account.")
        self._set_disabled(record, disabled, actor=admin.name)

    def set_disabled_cli(self, name: str, disabled: bool) -> None:
        self._set_disabled(self._record(name), disabled, actor="cli")

    def _set_disabled(self, record: UserRecord, disabled: bool, *, actor: str) -> None:
        self._store.update_user(record.id, disabled=disabled)
        action = "user.disable" if disabled else "user.enable"
        self._store.audit(actor=actor, action=action, target=record.name)

    def set_password_cli(self, name: str, password: str) -> None:
        _check_password(password)
        record = self._record(name)
        self._store.update_user(
            record.id, password_hash=hash_password(password), failed_logins=0, locked_until=None
        )
        self._store.audit(actor="cli", action="user.passwd", target=name)

    def _record(self, name: str) -> UserRecord:
        record = self._store.get_user_by_name(name)
        if record is None:
            raise AccountError(f"There is no user named '{name}'.")
        return record


def _check_name(name: str) -> None:
    if not _NAME.match(name or ""):
        raise AccountError(
            f"'{name}' is not a valid user name: use 1-64 letters, digits, '.', '_', '@' or '-'."
        )


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}, not '{role}'.")
