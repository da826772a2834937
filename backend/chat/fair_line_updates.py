"""When a waiting turn's place is reported (FairLine.wait): at once for the first place and
for a move into the next round of starts, otherwise at the ticket's own tick.

Each ticket has a grid of ``every``-second ticks, offset by a phase that spreads consecutive
tickets evenly over the interval. A change is reported at the first tick at least an interval
after the last report (and not before the change was seen), so each person gets at most one
such update per interval, and the dozens who move up when a turn ends are not all sent a page
update in the same instant.
"""

from __future__ import annotations

import math

from backend.chat.fair_line_values import Ticket, Waiting

_GOLDEN_FRACTION = (math.sqrt(5) - 1) / 2


def update_tick(ticket: Ticket, moment: float, every: float) -> float:
    """The ticket's first update tick at or after `moment` (`moment` itself with no interval)."""
    if every <= 0:
        return moment
    offset = ticket.joined_at + (ticket.seq * _GOLDEN_FRACTION) % 1.0 * every
    return offset + math.ceil((moment - offset) / every) * every


class UpdateSchedule:
    """One waiting ticket's reports: what was last shown, and when the next change is due."""

    def __init__(self, ticket: Ticket, every: float) -> None:
        self._ticket = ticket
        self._every = every
        self._last: Waiting | None = None
        self._last_at = -math.inf
        self._due_at: float | None = None  # the change seen since the last report

    def wait_s(self, place: Waiting, now: float, slots: int) -> float:
        """Seconds until `place` is to be reported: 0 now, inf not before it changes."""
        last = self._last
        if last is None or (place.position != last.position and place.position <= slots):
            return 0.0
        if place == last:  # nothing new (or back where it was shown)
            self._due_at = None
            return math.inf
        if self._due_at is None:
            moment = max(now, self._last_at + self._every)
            self._due_at = update_tick(self._ticket, moment, self._every)
        return self._due_at - now

    def reported(self, place: Waiting, now: float) -> None:
        self._last, self._last_at, self._due_at = place, now, None
