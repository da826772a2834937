"""The Admin tab's handlers: services and the caller in, plain values out.

Hiding the tab from staff is courtesy; the control is that every handler resolves the user
from the request and refuses anyone but an admin (with a `refused` audit row), and the
services check again.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from backend.auth import AUDIT_PAGE_SIZE, AuditFilter, AuditPage, Role, User
from ui.admin.render import audit_rows, page_label, user_rows
from ui.common import Caller, acting_user

if TYPE_CHECKING:
    from backend.services import Services

_MAX_PAGE = 1_000_000  # far past any audit log; keeps a forged page number a small integer


@dataclass(frozen=True)
class AuditQuery:
    """Which audit entries the admin is looking at: the filters and the page."""

    filters: AuditFilter = field(default_factory=AuditFilter)
    page: int = 1

    def moved(self, step: int) -> AuditQuery:
        return replace(self, page=_page(self.page + step))


def audit_query(actor: Any, action: Any, outcome: Any, since: Any, page: Any = 1) -> AuditQuery:
    """An AuditQuery from the filter fields as an event sends them (any type)."""
    filters = AuditFilter(
        actor=_text(actor), action=_text(action), outcome=_text(outcome), since=_text(since)
    )
    return AuditQuery(filters, _page(page))


@dataclass(frozen=True)
class AdminView:
    """What the tab shows after any admin action: users, the user picker, one audit page."""

    user_rows: list[list[Any]]
    user_names: list[str]
    audit_rows: list[list[str]]
    page_label: str
    page: int


@dataclass(frozen=True)
class Done:
    """A change made: the fresh view and a sentence saying what changed (plain text)."""

    view: AdminView
    notice: str


class AdminHandlers:
    def __init__(self, services: Services) -> None:
        self.services = services

    def admin(self, request: Caller | None, what: str, action: str, target: Any = "") -> User:
        """The signed-in admin, or PermissionDenied (and a `refused` audit row)."""
        user = acting_user(self.services, request)
        return self.services.users.require_admin(user, what, action=action, target=_text(target))

    def view(self, admin: User, query: AuditQuery) -> AdminView:
        """The users table, the user picker and one audit page, for this admin."""
        records = self.services.users.list_users(admin)
        shown = self._audit_page(admin, query)
        return AdminView(
            user_rows=user_rows(records),
            user_names=[r.name for r in records],
            audit_rows=audit_rows(shown.entries),
            page_label=page_label(shown, AUDIT_PAGE_SIZE),
            page=shown.page,
        )

    def _audit_page(self, admin: User, query: AuditQuery) -> AuditPage:
        """The asked-for page; past the end (rows went away), the one before, else the first."""
        shown = self.services.audit.read(admin, query.filters, query.page, AUDIT_PAGE_SIZE)
        for fallback in (shown.page - 1, 1):
            if shown.entries or shown.page <= 1:
                break
            shown = self.services.audit.read(admin, query.filters, fallback, AUDIT_PAGE_SIZE)
        return shown

    def load(self, request: Caller | None) -> AdminView | None:
        """The tab's first view for an admin; None for anyone else (the tab stays hidden)."""
        user = self.services.auth.resolve(getattr(request, "username", None))
        if user is None or not user.is_admin:
            return None
        return self.view(user, AuditQuery())

    def add_user(
        self, request: Caller | None, name: Any, password: Any, role: Any, query: AuditQuery
    ) -> Done:
        admin = self.admin(request, "add users", "user.add", name)
        added = self.services.users.add_user(
            admin, _text(name).strip(), _text(password), cast("Role", _text(role))
        )
        return Done(self.view(admin, query), f"Added {added.role} '{added.name}'.")

    def set_role(self, request: Caller | None, name: Any, role: Any, query: AuditQuery) -> Done:
        admin = self.admin(request, "change roles", "user.role", name)
        self.services.users.set_role(admin, _chosen(name), cast("Role", _text(role)))
        return Done(self.view(admin, query), f"'{name}' is now {role}.")

    def set_disabled(
        self, request: Caller | None, name: Any, disabled: bool, query: AuditQuery
    ) -> Done:
        what = "disable users" if disabled else "enable users"
        action = "user.disable" if disabled else "user.enable"
        admin = self.admin(request, what, action, name)
        self.services.users.set_disabled(admin, _chosen(name), disabled)
        state = "disabled" if disabled else "enabled"
        return Done(self.view(admin, query), f"'{name}' is {state}.")

    def set_password(
        self, request: Caller | None, name: Any, password: Any, query: AuditQuery
    ) -> Done:
        admin = self.admin(request, "set passwords", "user.passwd", name)
        self.services.users.set_password(admin, _chosen(name), _text(password))
        return Done(self.view(admin, query), f"Password set for '{name}'.")

    def user_role(self, request: Caller | None, name: Any) -> str | None:
        """The picked user's role, for the Role choice to start from (None: nobody is picked,
        the choice stays as it is). A name that is not a user's is a sentence naming it."""
        admin = self.admin(request, "list users", "user.list", name)
        if name is None or name == "":
            return None
        if not isinstance(name, str):
            kind = type(name).__name__
            raise ValueError(f"Pick a user from the list, by name (got a value of type {kind}).")
        for record in self.services.users.list_users(admin):
            if record.name.lower() == name.strip().lower():
                return record.role
        raise ValueError(f"There is no user {name[:60]!r}; pick one from the list.")

    def audit_page(self, request: Caller | None, query: AuditQuery) -> AdminView:
        admin = self.admin(request, "read the audit log", "audit.read")
        return self.view(admin, query)

    def export_audit(self, request: Caller | None, filters: AuditFilter) -> Path:
        """The filtered audit log as a CSV file in a fresh temporary folder."""
        admin = self.admin(request, "export the audit log", "audit.export")
        text = self.services.audit.export_csv(admin, filters)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(tempfile.mkdtemp(prefix="hearth-audit-")) / f"hearth-audit-{stamp}.csv"
        path.write_text(text, encoding="utf-8")
        return path


def _text(value: Any) -> str:
    """A form value as text, whatever type a caller sent (None is empty)."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def _page(value: Any) -> int:
    """A page number from whatever was sent: 1 for anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 1
    try:
        number = float(value)
    except ValueError:
        return 1
    return 1 if math.isnan(number) else int(min(max(number, 1), _MAX_PAGE))


def _chosen(name: Any) -> str:
    if not name:
        raise ValueError("Pick a user first.")
    return _text(name)
