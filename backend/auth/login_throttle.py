"""Login back-off that holds under parallel attempts: per account (one turn at a time) and
per client address (booked start times).

Each consecutive failed login for a name (within LOCKOUT_S, since its last success) doubles the
wait before the next attempt for that name is checked: 0, 0.25, 0.5, 1, 2, 2 ... seconds.
Attempts for one name take turns, so five sent at once wait 0 + 0.25 + 0.5 + 1 + 2 seconds in
all and lock the account out exactly as five sent one after another would.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

LOCKOUT_AFTER_FAILURES = 5
LOCKOUT_S = 300
LOGIN_DELAY_BASE_S = 0.25
LOGIN_DELAY_MAX_S = 2.0
# Attempts for one name waiting their turn at once; more are refused unchecked (and audited).
MAX_WAITING_PER_ACCOUNT = 2 * LOCKOUT_AFTER_FAILURES
# Failed logins from one address (within LOCKOUT_S) that cost it nothing; past them, its attempts
# are slowed like an account's. An office behind one address mistypes now and then; a spray
# across many names does not stop at twenty.
ADDRESS_FREE_FAILURES = 20
_MAX_TRACKED_ADDRESSES = 4096


class TooManyWaiting(Exception):
    """More attempts for this key are already waiting than allowed."""


def login_delay_s(failures: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before checking a login after this many consecutive failures."""
    if failures <= 0 or base_s <= 0:
        return 0.0
    return min(base_s * 2 ** (failures - 1), max_s)


def identity(name: str | None) -> str:
    """The key of an account name: names differing only in case are one account."""
    return (name or "").strip().casefold()


class TakeTurns:
    """One asyncio.Lock per key, kept only while someone holds or waits for it.

    Used from one event loop (the web server's); a lock is dropped when its last user leaves,
    so neither unknown names nor another loop's locks pile up.
    """

    def __init__(self, max_waiting: int = MAX_WAITING_PER_ACCOUNT) -> None:
        self._max_waiting = max_waiting
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def waiting(self, key: str) -> int:
        return self._locks.get(key, (None, 0))[1]

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if users >= self._max_waiting:
            raise TooManyWaiting(key)
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class AddressThrottle:
    """Slows logins from an address with many recent failures; attempts sent at once from it
    are booked one after another, each `delay` after the previous one's booked start."""

    def __init__(
        self,
        *,
        free_failures: int = ADDRESS_FREE_FAILURES,
        base_s: float = LOGIN_DELAY_BASE_S,
        max_s: float = LOGIN_DELAY_MAX_S,
        window_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = free_failures
        self._base_s, self._max_s, self._window_s = base_s, max_s, window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._next_start: dict[str, float] = {}

    def recent_failures(self, address: str) -> int:
        return len(self._prune(address, self._clock()))

    def book(self, address: str) -> float:
        """Reserve this attempt's start; returns the seconds to wait before it may proceed."""
        now = self._clock()
        delay = login_delay_s(
            len(self._prune(address, now)) - self._free, self._base_s, self._max_s
        )
        if delay <= 0:
            return 0.0
        start = max(now, self._next_start.get(address, now)) + delay
        self._next_start[address] = start
        return start - now

    def record(self, address: str, *, failed: bool) -> None:
        """Count a failed attempt from this address (a success clears nothing: see above)."""
        if failed:
            self._prune(address, self._clock()).append(self._clock())
        if len(self._failures) > _MAX_TRACKED_ADDRESSES:
            self._forget_idle()

    def _prune(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and times[0] <= now - self._window_s:
            times.popleft()
        return times

    def _forget_idle(self) -> None:
        now = self._clock()
        for address in list(self._failures):
            if not self._prune(address, now) and self._next_start.get(address, 0) <= now:
                del self._failures[address]
                self._next_start.pop(address, None)
