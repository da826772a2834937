"""Users, scrypt password hashes, roles, login throttling, the audit log reader.

The acting User of every service call comes from here.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from backend.store.database import AuditEntry, Store, UserExists, UserRecord

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
MIN_PASSWORD_LENGTH = 8
LOCKOUT_AFTER_FAILURES = 5
LOCKOUT_S = 300
# Each consecutive failed login (within LOCKOUT_S, since the last success) doubles the wait
# before the next attempt for that name is checked: 0, 0.25, 0.5, 1, 2, 2 ... seconds.
LOGIN_DELAY_BASE_S = 0.25
LOGIN_DELAY_MAX_S = 2.0
AUDIT_PAGE_SIZE = 50
AUDIT_OUTCOMES = ("ok", "failed", "refused")
_MAX_LOGGED_NAME = 64  # an unknown name typed at the login form is audited, cut to this
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
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


def login_delay_s(failures: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before checking a login after this many consecutive failures."""
    if failures <= 0 or base_s <= 0:
        return 0.0
    return min(base_s * 2 ** (failures - 1), max_s)


@dataclass(frozen=True)
class AuditFilter:
    """What the admin narrows the audit log to; empty fields match everything."""

    actor: str = ""
    action: str = ""
    outcome: str = ""
    since: str = ""  # a date (YYYY-MM-DD) or ISO 8601 time, taken as UTC


@dataclass(frozen=True)
class AuditPage:
    entries: tuple[AuditEntry, ...]
    page: int
    has_next: bool


class Accounts:
    """User management and login checks over the store; every change is audited."""

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

    # -- sessions ------------------------------------------------------------------------

    async def authenticate(self, name: str, password: str) -> bool:
        """Gradio's auth callable: True when the login may proceed. Slowed, locked, audited.

        Async so that Gradio awaits it: the back-off sleep and the scrypt check then run
        without holding up the server's event loop (Gradio calls a plain function inline).
        """
        delay_s = await asyncio.to_thread(self.login_delay_for, name)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        return await asyncio.to_thread(self.check_login, name, password)

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
        if disabled:
            self._store.update_user(record.id, disabled=True)
        else:  # enabling also lifts a lockout: it is how an admin lets a locked-out user back
            self._store.update_user(record.id, disabled=False, failed_logins=0, locked_until=None)
        action = "user.disable" if disabled else "user.enable"
        self._store.audit(actor=actor, action=action, target=record.name)

    def set_password(self, actor: User | None, name: str, password: str) -> None:
        admin = require_admin(actor, "set passwords")
        self._set_password(name, password, actor=admin.name)

    def set_password_cli(self, name: str, password: str) -> None:
        self._set_password(name, password, actor="cli")

    def _set_password(self, name: str, password: str, *, actor: str) -> None:
        _check_password(password)
        record = self._record(name)
        self._store.update_user(
            record.id, password_hash=hash_password(password), failed_logins=0, locked_until=None
        )
        self._store.audit(actor=actor, action="user.passwd", target=record.name)

    # -- audit log -------------------------------------------------------------------------

    def audit_log(
        self,
        actor: User | None,
        filters: AuditFilter = AuditFilter(),
        page: int = 1,
        per_page: int = AUDIT_PAGE_SIZE,
    ) -> AuditPage:
        """One page of the audit log, newest first, narrowed by the filters. Admins only."""
        require_admin(actor, "read the audit log")
        page = max(1, int(page))
        rows = self._store.list_audit(
            **_filter_args(filters), limit=per_page + 1, offset=(page - 1) * per_page
        )
        return AuditPage(tuple(rows[:per_page]), page, has_next=len(rows) > per_page)

    def audit_csv(self, actor: User | None, filters: AuditFilter = AuditFilter()) -> str:
        """The filtered audit log as CSV (when, who, action, target, outcome, detail)."""
        admin = require_admin(actor, "export the audit log")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["when", "who", "action", "target", "outcome", "detail"])
        args, offset, count, batch = _filter_args(filters), 0, 0, 1000
        while rows := self._store.list_audit(**args, limit=batch, offset=offset):
            for e in rows:
                writer.writerow(
                    _csv_cell(v) for v in (e.at, e.actor, e.action, e.target, e.outcome, e.detail)
                )
            count += len(rows)
            offset += batch
        self._store.audit(
            actor=admin.name, action="audit.export", detail=f"{count} entries; {_describe(filters)}"
        )
        return out.getvalue()

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
    name = (name or "").strip() or "?"
    return name if len(name) <= _MAX_LOGGED_NAME else name[:_MAX_LOGGED_NAME] + "…"


def _filter_args(filters: AuditFilter) -> dict[str, str | None]:
    outcome = filters.outcome.strip()
    if outcome and outcome not in AUDIT_OUTCOMES:
        raise AccountError(f"Outcome must be one of {', '.join(AUDIT_OUTCOMES)}, not '{outcome}'.")
    return {
        "actor": filters.actor.strip() or None,
        "action": filters.action.strip() or None,
        "outcome": outcome or None,
        "since": filters.since.strip() or None,  # the store parses it (UTC when no offset)
    }


def _describe(filters: AuditFilter) -> str:
    given = [f"{k}={v}" for k, v in vars(filters).items() if str(v).strip()]
    return ", ".join(given) or "no filters"


def _csv_cell(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (an unknown login name is free text)."""
    return "'" + value if value.startswith(_CSV_FORMULA_START) else value


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
