"""The Admin tab's tables as rows (gr.Dataframe draws them) and the audit pager's label."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.auth import AuditPage
from backend.services import AuditEntry, UserRecord

USER_HEADERS = ["Name", "Role", "Status", "Created (UTC)", "Failed logins"]
AUDIT_HEADERS = ["When (UTC)", "Who", "Action", "Target", "Outcome", "Detail"]


def user_rows(records: list[UserRecord], now: datetime | None = None) -> list[list[Any]]:
    """The users table: never the password hash."""
    now = now or datetime.now().astimezone()
    rows = []
    for record in records:
        status = "disabled" if record.disabled else "active"
        if record.locked_until and datetime.fromisoformat(record.locked_until) > now:
            status = f"locked until {when(record.locked_until)}"
        rows.append(
            [record.name, record.role, status, when(record.created_at), record.failed_logins]
        )
    return rows


def audit_rows(entries: tuple[AuditEntry, ...]) -> list[list[str]]:
    return [[when(e.at), e.actor, e.action, e.target, e.outcome, e.detail] for e in entries]


def page_label(shown: AuditPage, per_page: int) -> str:
    """ "Page 2 · entries 51–100 · more ›": where this page is, and whether older ones follow."""
    first = (shown.page - 1) * per_page + 1 if shown.entries else 0
    last = first + len(shown.entries) - 1 if shown.entries else 0
    more = " · more ›" if shown.has_next else ""
    return f"Page {shown.page} · entries {first}–{last}{more}"


def when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso
