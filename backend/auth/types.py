"""The values every account service speaks: users, roles, the two errors, the admin check.

Imports nothing else from backend.auth, so any module of the package may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")


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


# Actors that are not signed-in people. Id 0 is never a row's id, so "you cannot disable your
# own account" never matches them; their name is what the audit log shows as the actor.
CLI = User(id=0, name="cli", role="admin")
"""Whoever runs `app.py users ...`: they hold the database file, so they own the box."""
SYSTEM = User(id=0, name="system", role="admin")
"""Hearth itself, creating the first admin when the app starts with no users."""


def require_admin(user: User | None, action: str) -> User:
    """Return the user if an admin; otherwise raise PermissionDenied naming the action."""
    if user is None:
        raise PermissionDenied(f"Sign in to {action}.")
    if not user.is_admin:
        raise PermissionDenied(f"Only an admin may {action}; {user.name} is {user.role}.")
    return user
