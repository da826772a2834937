"""Limits and quotas an admin sets per role and per user, checked before a turn joins the line.

Three limits, each unset (no limit) unless an admin sets it: turns in flight (a person's
turns waiting or running at once), requests per minute (turns accepted in the last 60 s) and
reply tokens per day (UTC; the usage table's sum). A user's own value wins over their role's.
A turn over a limit is refused before anything is written, with a sentence saying when it
resets, and the refusal is audited ('chat.limit', 'refused'). A turn that passes gets a Permit:
its reply is capped at what is left of the day's tokens, and it counts as in flight until the
Permit is released. Counters of turns and requests live in this process (one Hearth process
serves a site); the day's tokens are read from the database.

Every change an admin makes is audited as 'limits.set'.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from backend.auth import ROLES, AccountError, User, UserAdmin
from backend.chat.validation import ChatInputError, parse_int
from backend.store.database import LimitRecord, Store
from backend.units import counted

WINDOW_S = 60.0
LABELS = {
    "turns_in_flight": "Turns in flight",
    "requests_per_minute": "Requests per minute",
    "reply_tokens_per_day": "Reply tokens per day",
}
MAXIMA = {"turns_in_flight": 1_000, "requests_per_minute": 100_000,
          "reply_tokens_per_day": 1_000_000_000}  # fmt: skip


@dataclass(frozen=True)
class LimitValues:
    """The three limits; None is "not set" (a user's: their role's applies; a role's: none)."""

    turns_in_flight: int | None = None
    requests_per_minute: int | None = None
    reply_tokens_per_day: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        return ", ".join(
            f"{LABELS[name].lower()} {'not set' if v is None else f'{v:,}'}"
            for name, v in self.as_dict().items()
        )


@dataclass(frozen=True)
class EffectiveLimits:
    """What applies to one user, and where each value came from ("your account", "role staff")."""

    values: LimitValues
    sources: tuple[str, str, str]  # per field of LimitValues, "" where no limit applies


class LimitReached(ChatInputError):
    """A turn over one of the user's limits; `retry_after_s` is None when it waits on a turn."""

    def __init__(self, message: str, limit: str, retry_after_s: float | None) -> None:
        super().__init__(message, limit)
        self.limit = limit
        self.retry_after_s = retry_after_s


def limit_values(raw: dict[str, object]) -> LimitValues:
    """LimitValues from a form: empty means not set, else a whole number from 0 to its maximum."""
    values: dict[str, int | None] = {}
    for name, label in LABELS.items():
        value = raw.get(name)
        if isinstance(value, str):  # "20,000" and "20 000" as people write them
            value = value.strip().replace(",", "").replace(" ", "").replace("_", "")
        if value is None or value == "":
            values[name] = None
        else:
            values[name] = parse_int(label, value, 0, MAXIMA[name])
    return LimitValues(**values)


def time_left(seconds: float) -> str:
    """ "3 h 12 min", "5 min", "23 s": how long until a limit resets."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Permit:
    """One admitted turn: in flight until released; its reply may use `reply_budget` tokens."""

    def __init__(self, release: Callable[[bool], None], reply_budget: int | None) -> None:
        self._release = release
        self._released = False
        self.reply_budget = reply_budget

    def release(self, *, refund: bool = False) -> None:
        """The turn is over; `refund`: it never ran (the line was full), so it is not counted
        as one of this minute's requests either."""
        if not self._released:
            self._released = True
            self._release(refund)


class TurnLimits:
    """Checks each turn against the acting user's limits; admins read and set them."""

    def __init__(
        self, store: Store, accounts: UserAdmin, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}
        self._recent: dict[int, deque[float]] = {}

    def today(self) -> str:
        """The UTC day turns count towards now, YYYY-MM-DD."""
        return self._clock().astimezone(UTC).date().isoformat()

    def used_today(self, user: User) -> int:
        """The user's reply tokens so far today (UTC), every model and source."""
        return self._store.reply_tokens_on(user.id, self.today())

    def effective(self, user: User) -> EffectiveLimits:
        by_role, by_user = self._store.limits_for(user.role, user.id)
        values: dict[str, int | None] = {}
        sources: list[str] = []
        for name in LABELS:
            own = getattr(by_user, name) if by_user else None
            role = getattr(by_role, name) if by_role else None
            values[name] = own if own is not None else role
            source = "your account" if own is not None else f"role {user.role}"
            sources.append("" if values[name] is None else source)
        return EffectiveLimits(LimitValues(**values), tuple(sources))  # type: ignore[arg-type]

    # -- a turn --------------------------------------------------------------------------

    def admit(self, user: User) -> Permit:
        """A Permit for one turn now, or LimitReached (audited) saying when to try again."""
        limits = self.effective(user)
        try:
            budget = self._reply_budget(user, limits)
            taken_at = self._take(user, limits)
        except LimitReached as refused:
            self._store.audit(
                actor=user.name, action="chat.limit", outcome="refused", detail=str(refused)
            )
            raise
        return Permit(lambda refund: self._give_back(user.id, taken_at if refund else None), budget)

    def _reply_budget(self, user: User, limits: EffectiveLimits) -> int | None:
        quota = limits.values.reply_tokens_per_day
        if quota is None:
            return None
        now = self._clock().astimezone(UTC)
        used = self._store.reply_tokens_on(user.id, now.date().isoformat())
        if used < quota:
            return quota - used
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        wait_s = (midnight - now).total_seconds()
        if quota == 0:
            message = (
                f"Chat replies are switched off for {limits.sources[2]}: 0 reply tokens a day."
            )
        else:
            message = (
                f"You have used your {quota:,} reply tokens for today; the quota resets at "
                f"00:00 UTC (in {time_left(wait_s)})."
            )
        raise LimitReached(message, "reply_tokens_per_day", wait_s)

    def _take(self, user: User, limits: EffectiveLimits) -> float:
        """Count the turn as in flight and as a request of this minute, unless that is over;
        returns the time it was counted at."""
        cap, rate = limits.values.turns_in_flight, limits.values.requests_per_minute
        now = self._clock().timestamp()
        with self._lock:
            running = self._in_flight.get(user.id, 0)
            if cap is not None and running >= cap:
                raise LimitReached(_in_flight_message(running, cap, limits.sources[0]),
                                   "turns_in_flight", None)  # fmt: skip
            recent = self._recent.setdefault(user.id, deque())
            while recent and recent[0] <= now - WINDOW_S:
                recent.popleft()
            if rate is not None and len(recent) >= rate:
                wait_s = recent[0] + WINDOW_S - now if recent else WINDOW_S
                if not recent:
                    del self._recent[user.id]
                raise LimitReached(_rate_message(len(recent), rate, limits.sources[1], wait_s),
                                   "requests_per_minute", wait_s)  # fmt: skip
            recent.append(now)
            self._in_flight[user.id] = running + 1
        return now

    def _give_back(self, user_id: int, refund_at: float | None) -> None:
        with self._lock:
            recent = self._recent.get(user_id)
            if refund_at is not None and recent:
                with contextlib.suppress(ValueError):
                    recent.remove(refund_at)
            left = self._in_flight.get(user_id, 0) - 1
            if left > 0:
                self._in_flight[user_id] = left
            else:
                self._in_flight.pop(user_id, None)

    # -- admins --------------------------------------------------------------------------

    def table(self, actor: User | None) -> list[LimitRecord]:
        """Every limit set, roles first. Admins only."""
        self._accounts.require_admin(actor, "read the limits", action="limits.read")
        return self._store.list_limits()

    def set_for(self, actor: User | None, target: object, raw: dict[str, object]) -> LimitValues:
        """Set the limits of "role:NAME" or "user:NAME" (a bare name is a user's)."""
        self._accounts.require_admin(actor, "set limits", action="limits.set",
                                     target=str(target)[:80])  # fmt: skip
        kind, name = parse_target(target)
        if kind == "role":
            return self.set_for_role(actor, name, raw)
        return self.set_for_user(actor, name, raw)

    def set_for_role(self, actor: User | None, role: object, raw: dict[str, object]) -> LimitValues:
        target = f"role:{role}"
        admin = self._accounts.require_admin(actor, "set limits", action="limits.set",
                                             target=target[:80])  # fmt: skip
        if role not in ROLES:
            raise AccountError(f"Role must be one of {', '.join(ROLES)}, not {role!r}.")
        values = limit_values(raw)
        self._store.set_limits(role=str(role), values=values.as_dict(), updated_by=admin.name)
        self._store.audit(actor=admin.name, action="limits.set", target=target,
                          detail=values.describe())  # fmt: skip
        return values

    def set_for_user(self, actor: User | None, name: object, raw: dict[str, object]) -> LimitValues:
        """Set one user's own limits; every field empty clears them (their role's apply)."""
        shown = str(name)[:80]
        admin = self._accounts.require_admin(actor, "set limits", action="limits.set",
                                             target=f"user:{shown}")  # fmt: skip
        record = self._store.get_user_by_name(name) if isinstance(name, str) else None
        if record is None:
            raise AccountError(f"There is no user named {shown!r}.")
        values = limit_values(raw)
        self._store.set_limits(user_id=record.id, values=values.as_dict(), updated_by=admin.name)
        self._store.audit(actor=admin.name, action="limits.set", target=f"user:{record.name}",
                          detail=values.describe())  # fmt: skip
        return values


def parse_target(target: object) -> tuple[str, str]:
    """("role", name) or ("user", name) from "role:NAME" / "user:NAME"; a bare name is a user."""
    if not isinstance(target, str) or not target.strip():
        raise AccountError("Pick a role or a user to set limits for.")
    kind, _, name = target.strip().partition(":")
    if name.strip() and kind in ("role", "user"):
        return kind, name.strip()
    return "user", target.strip()


def _in_flight_message(running: int, cap: int, source: str) -> str:
    if cap == 0:
        return f"Chat is switched off for {source}: 0 turns in flight allowed."
    return (
        f"You already have {counted(running, 'reply', 'replies')} in progress, the most allowed "
        f"at once for {source} "
        f"({cap}); wait for one to finish or stop one, then send again."
    )


def _rate_message(sent: int, rate: int, source: str, wait_s: float) -> str:
    if rate == 0:
        return f"Chat is switched off for {source}: 0 requests a minute allowed."
    return (
        f"You have sent {sent} requests in the last minute, the most allowed for {source} "
        f"({rate} a minute); try again in {time_left(wait_s)}."
    )
