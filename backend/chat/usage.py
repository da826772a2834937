"""Usage for people to read: their own (everyone), everyone's or one person's (admins), and CSV.

The rows are written by the chat service as each turn ends (backend.store.usage); days are UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backend.auth import AccountError, User, UserAdmin
from backend.auth.audit import csv_cell
from backend.chat.limits import utc_now
from backend.chat.validation import parse_int
from backend.store.database import Store, UsageTotals

DEFAULT_DAYS = 30
MAX_DAYS = 366
TOP = 10
CSV_HEADER = ("day", "user", "model", "source", "requests", "prompt_tokens", "reply_tokens",
              "engine_s", "errors", "stopped")  # fmt: skip


@dataclass(frozen=True)
class UsageReport:
    """What the Usage view shows for a range of days (inclusive, UTC)."""

    whose: str  # "everyone", or a user's name
    since: str
    until: str
    by_day: tuple[UsageTotals, ...]  # only days with use, oldest first
    by_model: tuple[UsageTotals, ...]  # most requests first
    by_user: tuple[UsageTotals, ...]  # top users by reply tokens ("everyone" only)

    @property
    def requests(self) -> int:
        return sum(d.requests for d in self.by_day)

    @property
    def reply_tokens(self) -> int:
        return sum(d.reply_tokens for d in self.by_day)

    @property
    def prompt_tokens(self) -> int:
        return sum(d.prompt_tokens for d in self.by_day)


class UsageService:
    """Reads usage for the acting user: staff their own, admins anyone's; exports are audited."""

    def __init__(
        self, store: Store, accounts: UserAdmin, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._clock = clock

    def report(
        self, actor: User | None, days: object = DEFAULT_DAYS, whose: object = ""
    ) -> UsageReport:
        """The last `days` days (today included) for `whose` ("" for an admin: everyone)."""
        user_id, name = self._scope(actor, whose, "see other people's usage", "usage.read")
        since, until = self._range(days)
        by_user: list[UsageTotals] = []
        if user_id is None:
            by_user = self._store.usage_by_user(since, until, limit=TOP)
        return UsageReport(
            whose=name,
            since=since,
            until=until,
            by_day=tuple(self._store.usage_by_day(since, until, user_id)),
            by_model=tuple(self._store.usage_by_model(since, until, user_id, limit=TOP)),
            by_user=tuple(by_user),
        )

    def export_csv(
        self, actor: User | None, days: object = DEFAULT_DAYS, whose: object = ""
    ) -> str:
        """Every row of the range as CSV (day, user, model, source and the counts); audited."""
        user_id, name = self._scope(actor, whose, "export other people's usage", "usage.export")
        since, until = self._range(days)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        count = 0
        for row in self._store.iter_usage(since, until, user_id):
            writer.writerow((row.day, csv_cell(row.user), csv_cell(row.model), row.source,
                             row.requests, row.prompt_tokens, row.reply_tokens,
                             f"{row.engine_ms / 1000:.3f}", row.errors, row.stopped))  # fmt: skip
            count += 1
        assert actor is not None  # _scope refused anonymous callers
        self._store.audit(actor=actor.name, action="usage.export", target=name,
                          detail=f"{count} rows, {since} to {until}")  # fmt: skip
        return out.getvalue()

    def _scope(
        self, actor: User | None, whose: object, what: str, action: str
    ) -> tuple[int | None, str]:
        """(user id or None for everyone, the name shown) that this actor may read."""
        if actor is None:
            self._accounts.require_admin(actor, what, action=action)  # refuses anonymous callers
            raise AssertionError("unreachable")
        name = whose.strip() if isinstance(whose, str) else ""
        if not actor.is_admin or (name and name.lower() == actor.name.lower()):
            if name and name.lower() != actor.name.lower():
                self._accounts.require_admin(actor, what, action=action, target=name[:80])
            return actor.id, actor.name
        if not name:
            return None, "everyone"
        record = self._store.get_user_by_name(name)
        if record is None:
            raise AccountError(f"There is no user named {name[:80]!r}.")
        return record.id, record.name

    def _range(self, days: object) -> tuple[str, str]:
        count = parse_int("Days", DEFAULT_DAYS if days in (None, "") else days, 1, MAX_DAYS)
        today = self._clock().astimezone(UTC).date()
        return (today - timedelta(days=count - 1)).isoformat(), today.isoformat()
