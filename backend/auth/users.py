"""User administration: add, list, change role, disable or enable, set passwords.

Every method takes the acting User and refuses anyone but an admin (the refusal is audited);
the CLI acts as `CLI` and start-up as `SYSTEM`, so their changes are audited under those names.
"""

from __future__ import annotations

import re
import secrets

from backend.auth.passwords import hash_password
from backend.auth.refusals import require_admin_audited
from backend.auth.types import ROLES, SYSTEM, AccountError, Role, User
from backend.store.database import Store, UserExists, UserRecord

MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class UserAdmin:
    """Accounts as an admin manages them; every change and refusal is audited."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def require_admin(
        self, actor: User | None, what: str, *, action: str, target: str = ""
    ) -> User:
        """The actor if an admin; else PermissionDenied and a `refused` audit row."""
        return require_admin_audited(self._store, actor, what, action=action, target=target)

    def ensure_first_admin(self, password: str | None = None) -> str | None:
        """Create an 'admin' user when there is none; return the password to print once."""
        if self._store.count_users() > 0:
            return None
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        self.add_user(SYSTEM, "admin", password, "admin")
        return password if generated else None

    def add_user(self, actor: User | None, name: str, password: str, role: Role) -> User:
        admin = self.require_admin(actor, "add users", action="user.add", target=str(name))
        _check_name(name)
        _check_password(password)
        _check_role(role)
        try:  # the name column ignores case: 'BOB' is refused while 'bob' exists
            record = self._store.create_user(name, role, hash_password(password))
        except UserExists as exc:
            raise AccountError(f"A user named '{name}' already exists.") from exc
        self._store.audit(actor=admin.name, action="user.add", target=name, detail=f"role={role}")
        return User(record.id, record.name, role)

    def list_users(self, actor: User | None) -> list[UserRecord]:
        self.require_admin(actor, "list users", action="user.list")
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
        """Disabling ends the user's sessions; enabling also lifts a lockout."""
        what, action = (
            ("disable users", "user.disable") if disabled else ("enable users", "user.enable")
        )
        admin = self.require_admin(actor, what, action=action, target=str(name))
        record = self._record(name)
        if record.id == admin.id and disabled:
            raise AccountError("You cannot disable your own account.")
        if disabled:
            self._store.update_user(record.id, disabled=True, end_sessions=True)
        else:  # enabling also lifts a lockout: it is how an admin lets a locked-out user back
            self._store.update_user(record.id, disabled=False, failed_logins=0, locked_until=None)
        detail = "sessions ended" if disabled else ""
        self._store.audit(actor=admin.name, action=action, target=record.name, detail=detail)

    def set_password(self, actor: User | None, name: str, password: str) -> None:
        """A new password ends the user's sessions and lifts a lockout."""
        admin = self.require_admin(actor, "set passwords", action="user.passwd", target=str(name))
        _check_password(password)
        record = self._record(name)
        self._store.update_user(record.id, password_hash=hash_password(password),
                                failed_logins=0, locked_until=None, end_sessions=True)  # fmt: skip
        self._store.audit(
            actor=admin.name, action="user.passwd", target=record.name, detail="sessions ended"
        )

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
