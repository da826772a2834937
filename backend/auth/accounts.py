"""Users, scrypt password hashes, roles, logins and sessions; admin checks audit each refusal.

The acting User of every service call comes from here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from backend.auth.audit_log import (
    AUDIT_PAGE_SIZE,
    AuditFilter,
    AuditPage,
    describe,
    export_csv,
    read_page,
)
from backend.auth.login_throttle import (
    LOCKOUT_AFTER_FAILURES,
    LOCKOUT_S,
    LOGIN_DELAY_BASE_S,
    LOGIN_DELAY_MAX_S,
    TakeTurns,
    TooManyWaiting,
    identity,
    login_delay_s,
)
from backend.store.accounts import AUDIT_OUTCOMES as AUDIT_OUTCOMES  # the one vocabulary
from backend.store.database import Store, UserExists, UserRecord

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
MIN_PASSWORD_LENGTH = 8
_MAX_LOGGED_NAME = 64  # an unknown name typed at the login form is audited, cut to this
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
    """User management, logins and sessions over the store; every change and refusal is audited."""

    def __init__(
        self,
        store: Store,
        *,
        login_delay_base_s: float = LOGIN_DELAY_BASE_S,
        login_delay_max_s: float = LOGIN_DELAY_MAX_S,
    ) -> None:
        self._store = store
        self._delay_base_s = login_delay_base_s
        self._delay_max_s = login_delay_max_s
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))
        self._login_lock = threading.Lock()
        self._turns = TakeTurns()

    # -- logins --------------------------------------------------------------------------

    async def authenticate(self, name: str, password: str) -> bool:
        """Gradio's auth callable: True when the login may proceed. Slowed, locked, audited.

        Attempts for one account (any case of its name) take turns: each waits the back-off
        its predecessors' failures earned, so parallel guesses are no faster than serial ones.
        Async so that Gradio awaits it: the waits and the scrypt check run off the event loop.
        """
        try:
            async with self._turns.turn(identity(name)):
                delay_s = await asyncio.to_thread(self.login_delay_for, name)
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                return await asyncio.to_thread(self.check_login, name, password)
        except TooManyWaiting:
            self.refuse_login(name, "too many attempts waiting at once")
            return False

    def refuse_login(self, name: str | None, reason: str) -> None:
        """Audit a login refused before its password was looked at (e.g. from another site)."""
        record = self._store.get_user_by_name(name or "")
        actor = record.name if record else _logged_name(name)
        self._store.audit(actor=actor, action="login", outcome="refused", detail=reason)

    def login_delay_for(self, name: str) -> float:
        """The back-off before the next login for this name, from its recent failures."""
        return login_delay_s(self.recent_failures(name), self._delay_base_s, self._delay_max_s)

    def recent_failures(self, name: str) -> int:
        """Failed logins for this name within LOCKOUT_S and since its last successful one."""
        record = self._store.get_user_by_name(name or "")
        actor = record.name if record else _logged_name(name)
        since = _now() - timedelta(seconds=LOCKOUT_S)
        entries = self._store.list_audit(
            actor=actor, action="login", since=since.isoformat(), limit=4 * LOCKOUT_AFTER_FAILURES
        )
        failures = 0
        for entry in entries:  # newest first
            if entry.outcome == "ok":
                break
            failures += entry.outcome == "failed"
        return failures

    def check_login(self, name: str, password: str) -> bool:
        """Check one login attempt now (no back-off): lockout, disabled, password; audited."""
        record = self._store.get_user_by_name(name or "")
        if record is None:
            verify_password(password, self._dummy_hash)  # same cost as a real check
            self._store.audit(
                actor=_logged_name(name), action="login", outcome="failed", detail="unknown user"
            )
            return False
        if refusal := _refusal(record):
            self._store.audit(actor=record.name, action="login", outcome="refused", detail=refusal)
            return False
        ok = verify_password(password, record.password_hash)
        with self._login_lock:
            # Attempts checked in parallel: one that finishes after another locked the account
            # (or an admin disabled it) is refused, so parallel guessing learns nothing more.
            current = self._store.get_user(record.id) or record
            if refusal := _refusal(current):
                self._store.audit(
                    actor=record.name, action="login", outcome="refused", detail=refusal
                )
                return False
            self._record_attempt(current, ok)
        return ok

    def _record_attempt(self, record: UserRecord, ok: bool) -> None:
        if ok:
            self._store.update_user(record.id, failed_logins=0, locked_until=None)
            self._store.audit(actor=record.name, action="login", outcome="ok")
            return
        failures = record.failed_logins + 1
        locked_until = None
        if failures >= LOCKOUT_AFTER_FAILURES:
            locked_until = (_now() + timedelta(seconds=LOCKOUT_S)).isoformat()
        self._store.update_user(record.id, failed_logins=failures, locked_until=locked_until)
        detail = f"{failures} failed attempt(s)"
        if locked_until:
            detail += f"; locked until {locked_until}"
        self._store.audit(actor=record.name, action="login", outcome="failed", detail=detail)

    # -- sessions ------------------------------------------------------------------------

    def session_stamp(self) -> int:
        """Read BEFORE a login is checked; the session it opens is valid while resolve() says."""
        return self._store.session_clock()

    def resolve(self, name: str | None, session: int | None = None) -> User | None:
        """The User for a signed-in name (any case); None for anonymous or disabled users, and,
        given the session's stamp, for a session ended since (password, role, disable, sign-out).
        """
        if not name:
            return None
        record = self._store.get_user_by_name(name)
        if record is None or record.disabled:
            return None
        if session is not None and (self._store.session_epoch(record.id) or 0) > session:
            return None
        return User(record.id, record.name, record.role)  # type: ignore[arg-type]

    def sign_out(self, name: str | None, session: int | None = None) -> User | None:
        """End every session of this user (a sign-out anywhere ends them all); audited."""
        user = self.resolve(name, session)
        if user is not None:
            self._store.end_sessions(user.id)
            self._store.audit(actor=user.name, action="logout", detail="all sessions ended")
        return user

    # -- management ----------------------------------------------------------------------

    def require_admin(
        self, actor: User | None, what: str, *, action: str, target: str = ""
    ) -> User:
        """require_admin, writing a `refused` audit row (who, action, target) when it refuses."""
        try:
            return require_admin(actor, what)
        except PermissionDenied as exc:
            target = _cut(target.encode("utf-8", "replace").decode("utf-8"))
            self._store.audit(actor=actor.name if actor else "?", action=action, target=target,
                              outcome="refused", detail=str(exc))  # fmt: skip
            raise

    def ensure_first_admin(self, password: str | None = None) -> str | None:
        """Create an 'admin' user when there is none; return the password to print once."""
        if self._store.count_users() > 0:
            return None
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        self._create("admin", password, "admin", actor="system")
        return password if generated else None

    def add_user(self, actor: User | None, name: str, password: str, role: Role) -> User:
        admin = self.require_admin(actor, "add users", action="user.add", target=str(name))
        return self._create(name, password, role, actor=admin.name)

    def add_user_cli(self, name: str, password: str, role: Role) -> User:
        """For `app.py users add`: whoever runs the CLI owns the box."""
        return self._create(name, password, role, actor="cli")

    def _create(self, name: str, password: str, role: Role, *, actor: str) -> User:
        _check_name(name)
        _check_password(password)
        _check_role(role)
        try:  # the name column ignores case: 'BOB' is refused while 'bob' exists
            record = self._store.create_user(name, role, hash_password(password))
        except UserExists as exc:
            raise AccountError(f"A user named '{name}' already exists.") from exc
        self._store.audit(actor=actor, action="user.add", target=name, detail=f"role={role}")
        return User(record.id, record.name, role)

    def list_users(self, actor: User | None) -> list[UserRecord]:
        self.require_admin(actor, "list users", action="user.list")
        return self._store.list_users()

    def list_users_cli(self) -> list[UserRecord]:
        return self._store.list_users()

    def set_role(self, actor: User | None, name: str, role: Role) -> None:
        """A changed role ends the user's sessions: they sign in again with the new one."""
        admin = self.require_admin(actor, "change roles", action="user.role", target=str(name))
        _check_role(role)
        record = self._record(name)
        if record.id == admin.id and role != "admin":
            raise AccountError("You cannot remove your own admin role.")
        changed = record.role != role
        self._store.update_user(record.id, role=role, end_sessions=changed)
        detail = f"role={role}" + ("; sessions ended" if changed else "")
        self._store.audit(actor=admin.name, action="user.role", target=record.name, detail=detail)

    def set_disabled(self, actor: User | None, name: str, disabled: bool) -> None:
        what, action = (
            ("disable users", "user.disable") if disabled else ("enable users", "user.enable")
        )
        admin = self.require_admin(actor, what, action=action, target=str(name))
        record = self._record(name)
        if record.id == admin.id and disabled:
            raise AccountError("You cannot disable your own account.")
        self._set_disabled(record, disabled, actor=admin.name)

    def set_disabled_cli(self, name: str, disabled: bool) -> None:
        self._set_disabled(self._record(name), disabled, actor="cli")

    def _set_disabled(self, record: UserRecord, disabled: bool, *, actor: str) -> None:
        if disabled:
            self._store.update_user(record.id, disabled=True, end_sessions=True)
        else:  # enabling also lifts a lockout: it is how an admin lets a locked-out user back
            self._store.update_user(record.id, disabled=False, failed_logins=0, locked_until=None)
        action = "user.disable" if disabled else "user.enable"
        detail = "sessions ended" if disabled else ""
        self._store.audit(actor=actor, action=action, target=record.name, detail=detail)

    def set_password(self, actor: User | None, name: str, password: str) -> None:
        admin = self.require_admin(actor, "set passwords", action="user.passwd", target=str(name))
        self._set_password(name, password, actor=admin.name)

    def set_password_cli(self, name: str, password: str) -> None:
        self._set_password(name, password, actor="cli")

    def _set_password(self, name: str, password: str, *, actor: str) -> None:
        _check_password(password)
        record = self._record(name)
        self._store.update_user(record.id, password_hash=hash_password(password),
                                failed_logins=0, locked_until=None, end_sessions=True)  # fmt: skip
        self._store.audit(
            actor=actor, action="user.passwd", target=record.name, detail="sessions ended"
        )

    # -- audit log -------------------------------------------------------------------------

    def audit_log(
        self,
        actor: User | None,
        filters: AuditFilter | None = None,
        page: int = 1,
        per_page: int = AUDIT_PAGE_SIZE,
    ) -> AuditPage:
        """One page of the audit log, newest first, narrowed by the filters. Admins only."""
        self.require_admin(actor, "read the audit log", action="audit.read")
        return read_page(self._store, filters or AuditFilter(), page, per_page)

    def audit_csv(self, actor: User | None, filters: AuditFilter | None = None) -> str:
        """The filtered audit log as CSV (when, who, action, target, outcome, detail)."""
        admin = self.require_admin(actor, "export the audit log", action="audit.export")
        filters = filters or AuditFilter()
        text, count = export_csv(self._store, filters)
        self._store.audit(
            actor=admin.name, action="audit.export", detail=f"{count} entries; {describe(filters)}"
        )
        return text

    def _record(self, name: str) -> UserRecord:
        record = self._store.get_user_by_name(name)
        if record is None:
            raise AccountError(f"There is no user named '{name}'.")
        return record


def _refusal(record: UserRecord) -> str:
    """Why this account may not sign in now; empty when it may."""
    if record.disabled:
        return "disabled"
    if record.locked_until and datetime.fromisoformat(record.locked_until) > _now():
        return f"locked until {record.locked_until}"
    return ""


def _logged_name(name: str | None) -> str:
    return _cut((name or "").strip() or "?")


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_LOGGED_NAME else text[:_MAX_LOGGED_NAME] + "…"


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
