"""Reading the audit log: filters, pages and the CSV export, for admins only."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from backend.auth.refusals import require_admin_audited
from backend.auth.types import User
from backend.store.accounts import AUDIT_OUTCOMES
from backend.store.database import AuditEntry, Store

AUDIT_PAGE_SIZE = 50
CSV_HEADER = ("when", "who", "action", "target", "outcome", "detail")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXPORT_BATCH = 1000


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


class AuditLog:
    """The audit log as an admin reads it; every read is checked and every export audited."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def read(
        self,
        actor: User | None,
        filters: AuditFilter | None = None,
        page: int = 1,
        per_page: int = AUDIT_PAGE_SIZE,
    ) -> AuditPage:
        """One page of the audit log, newest first, narrowed by the filters. Admins only."""
        require_admin_audited(self._store, actor, "read the audit log", action="audit.read")
        return read_page(self._store, filters or AuditFilter(), page, per_page)

    def export_csv(self, actor: User | None, filters: AuditFilter | None = None) -> str:
        """The filtered audit log as CSV (when, who, action, target, outcome, detail)."""
        admin = require_admin_audited(
            self._store, actor, "export the audit log", action="audit.export"
        )
        filters = filters or AuditFilter()
        text, count = export_csv(self._store, filters)
        self._store.audit(
            actor=admin.name, action="audit.export", detail=f"{count} entries; {describe(filters)}"
        )
        return text


def read_page(store: Store, filters: AuditFilter, page: int, per_page: int) -> AuditPage:
    """One page of the audit log, newest first, narrowed by the filters."""
    page = max(1, int(page))
    rows = store.list_audit(
        **filter_args(filters), limit=per_page + 1, offset=(page - 1) * per_page
    )
    return AuditPage(tuple(rows[:per_page]), page, has_next=len(rows) > per_page)


def export_csv(store: Store, filters: AuditFilter) -> tuple[str, int]:
    """Every matching entry as CSV (newest first), and how many there were."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    args, offset = filter_args(filters), 0
    while rows := store.list_audit(**args, limit=_EXPORT_BATCH, offset=offset):
        for e in rows:
            writer.writerow(
                csv_cell(v) for v in (e.at, e.actor, e.action, e.target, e.outcome, e.detail)
            )
        offset += len(rows)
    return out.getvalue(), offset


def filter_args(filters: AuditFilter) -> dict[str, str | None]:
    outcome = filters.outcome.strip()
    if outcome and outcome not in AUDIT_OUTCOMES:
        raise ValueError(f"Outcome must be one of {', '.join(AUDIT_OUTCOMES)}, not '{outcome}'.")
    return {
        "actor": filters.actor.strip() or None,
        "action": filters.action.strip() or None,
        "outcome": outcome or None,
        "since": filters.since.strip() or None,  # the store parses it (UTC when no offset)
    }


def describe(filters: AuditFilter) -> str:
    given = [f"{k}={v}" for k, v in vars(filters).items() if str(v).strip()]
    return ", ".join(given) or "no filters"


def csv_cell(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (an unknown login name is free text)."""
    return "'" + value if value.startswith(_CSV_FORMULA_START) else value
