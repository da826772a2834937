"""Who is signing in: Gradio's auth callable with back-off and lockout, sessions and sign-out.

The acting User of every service call comes from `Authentication.resolve`.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from datetime import UTC, datetime, timedelta

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
from backend.auth.passwords import hash_password, verify_password
from backend.auth.refusals import logged_name
from backend.auth.types import User
from backend.store.database import Store, UserRecord


def _now() -> datetime:
    return datetime.now(UTC)


class Authentication:
    """Logins (slowed, locked, audited) and the sessions they open, over the store."""

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
        actor = record.name if record else logged_name(name)
        self._store.audit(actor=actor, action="login", outcome="refused", detail=reason)

    def login_delay_for(self, name: str) -> float:
        """The back-off before the next login for this name, from its recent failures."""
        return login_delay_s(self.recent_failures(name), self._delay_base_s, self._delay_max_s)

    def recent_failures(self, name: str) -> int:
        """Failed logins for this name within LOCKOUT_S and since its last successful one."""
        record = self._store.get_user_by_name(name or "")
        actor = record.name if record else logged_name(name)
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
                actor=logged_name(name), action="login", outcome="failed", detail="unknown user"
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


def _refusal(record: UserRecord) -> str:
    """Why this account may not sign in now; empty when it may."""
    if record.disabled:
        return "disabled"
    if record.locked_until and datetime.fromisoformat(record.locked_until) > _now():
        return f"locked until {record.locked_until}"
    return ""
