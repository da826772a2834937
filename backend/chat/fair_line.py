"""The fair line in front of the engine: round-robin over users, per-user and global caps.

Order. The line keeps a virtual clock V, in rounds: every start moves it on by 1/max(B, slots),
B being the number of users with turns in the line, so it gains one round each time all of
them could have started one turn, and no faster than the slots serve (a lone user's start
while other slots stand free is a fraction of a round); it never falls behind the round of a
turn that starts.
A joining turn gets round V when its user has nothing else in the line, and otherwise

    max(V + 1, the round of the user's latest turn + 1)

Waiting turns start in order of (round, join order), skipping users who already have
``per_user_in_flight`` turns running. So a user's second request waits behind everyone's
first, a user with a turn in flight goes after users with none, and one user with ten tabs
gets one start per round like everyone else; people who send one question at a time are
served first come, first served, and nobody saves up credit by being away (the line
forgets a user as soon as they have nothing in it). Turns of one user keep their order.
This is start-time fair queueing with one unit per turn and a GPS-style virtual clock.

Positions shown while waiting are that order (exact unless a user's per-user cap holds
their turn back; someone joining in an earlier round can move a turn back by one). Expected
wait = the moving average of recent turns' engine time x ceil(position / slots).

Caps. ``slots`` is how many turns the engine runs at once (Ollama: OLLAMA_NUM_PARALLEL,
default 1; running more only queues inside Ollama, where the line cannot see or order
them). ``per_user_in_flight`` caps one user's RUNNING turns; ``max_waiting_per_user`` caps
their WAITING ones (over it: TooManyWaiting). ``max_waiting`` caps everyone's waiting turns
together (over it: LineFull, "busy: N people ahead, try again in about N s"). A turn that
can start at once never counts as waiting and is never refused.

Use (one process, any threads; Gradio runs sync generator handlers in worker threads):

    ticket = line.join(user.name)                # may raise LineFull / TooManyWaiting
    with ticket:                                 # leaves the line or frees the slot, always
        for place in line.wait(ticket, cancel):  # Waiting updates until it starts
            yield place.describe()
        if not ticket.has_slot:                  # Stop while waiting: write nothing
            return
        with line.slot(ticket):                  # records the turn's time unless it raised
            ...stream the engine...
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from backend.chat.fair_line_updates import UpdateSchedule
from backend.chat.fair_line_values import (
    LineFull,
    LineStats,
    NotAdmitted,
    StopFlag,
    Ticket,
    TicketState,
    TooManyWaiting,
    Waiting,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_WAITING_PER_USER = 4
DEFAULT_PRIOR_TURN_S = 20.0  # a few hundred tokens at 20-40 tok/s, before any turn finished
DEFAULT_EWMA_ALPHA = 0.2  # weight of the newest turn; about the last ten turns count
DEFAULT_POLL_S = 0.1  # how often a waiter looks at a plain Event (a StopFlag wakes it)
DEFAULT_UPDATE_INTERVAL_S = 1.0  # at most one update this often, bar the move into the next round


class FairLine:
    """Admits chat turns to the engine's slots fairly across users; thread-safe."""

    def __init__(
        self,
        slots: int,
        per_user_in_flight: int,
        max_waiting: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_waiting_per_user: int = DEFAULT_MAX_WAITING_PER_USER,
        prior_turn_s: float = DEFAULT_PRIOR_TURN_S,
        ewma_alpha: float = DEFAULT_EWMA_ALPHA,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        _check_count("slots", slots, 1)
        _check_count("per_user_in_flight", per_user_in_flight, 1)
        _check_count("max_waiting", max_waiting, 0)
        _check_count("max_waiting_per_user", max_waiting_per_user, 0)
        if not (isinstance(prior_turn_s, int | float) and 0 < prior_turn_s < math.inf):
            raise ValueError(f"prior_turn_s must be a positive number of seconds: {prior_turn_s!r}")
        if not (isinstance(ewma_alpha, int | float) and 0 < ewma_alpha <= 1):
            raise ValueError(f"ewma_alpha must be in (0, 1]: {ewma_alpha!r}")
        self.slots = slots
        self.per_user_in_flight = per_user_in_flight
        self.max_waiting = max_waiting
        self.max_waiting_per_user = max_waiting_per_user
        self._clock = clock
        self._alpha = float(ewma_alpha)
        self._turn_s = float(prior_turn_s)
        self._sampled = False
        self._on_wait = on_wait
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Ticket]] = {}
        self._running_by_user: dict[str, int] = {}
        self._last_round: dict[str, float] = {}  # users with turns in the line: latest round
        self._round = 0.0  # V, the line's virtual clock (see the module docstring)
        self._running = 0
        self._waiting = 0
        self._seq = 0
        self._starts = 0
        self._version = 0
        self._positions: tuple[int, dict[Ticket, int]] = (-1, {})
        self._completed = self._left = self._refused = 0

    # -- joining and leaving -------------------------------------------------------------

    def join(self, user: str) -> Ticket:
        """A ticket for one turn; it holds a slot at once when one is free for this user."""
        with self._cond:
            self._check_room(user)
            self._seq += 1
            ticket = Ticket(self, user, self._seq, self._clock(), self._round_for(user))
            self._last_round[user] = ticket.round
            self._queues.setdefault(user, deque()).append(ticket)
            self._waiting += 1
            waits = self._dispatch()
            self._changed()
        self._report(waits)
        return ticket

    def release(
        self, ticket: Ticket, *, engine_s: float | None = None, record: bool = True
    ) -> None:
        """Leave the line (waiting) or free the slot (running); a no-op once done or left.

        A freed slot's engine time (``engine_s``, else the time it was held) feeds the expected
        wait, unless ``record`` is False (a turn that failed says little about turn length).
        """
        if ticket._line is not self:
            raise ValueError(f"{ticket!r} belongs to another line")
        with self._cond:
            if ticket.state is TicketState.WAITING:
                self._remove_waiting(ticket)
            elif ticket.state is TicketState.RUNNING:
                self._free_slot(ticket, engine_s, record)
            else:
                return
            waits = self._dispatch()
            self._changed()
        self._report(waits)

    def resize(self, slots: int) -> None:
        """The engine now runs `slots` turns at once (engines added or removed): waiting turns
        start at once where room was made; running turns keep their slots when it shrinks."""
        _check_count("slots", slots, 1)
        with self._cond:
            self.slots = slots
            waits = self._dispatch()
            self._changed()
        self._report(waits)

    @contextmanager
    def slot(self, ticket: Ticket) -> Iterator[Ticket]:
        """Hold the ticket's slot for the block; it is freed however the block ends."""
        if not ticket.has_slot:
            raise NotAdmitted(f"{ticket!r} does not hold a slot; wait for it first")
        ok = False
        try:
            yield ticket
            ok = True
        finally:
            self.release(ticket, record=ok)

    # -- waiting -------------------------------------------------------------------------

    def wait(
        self,
        ticket: Ticket,
        cancel: threading.Event | None = None,
        *,
        poll_s: float = DEFAULT_POLL_S,
        update_every_s: float = DEFAULT_UPDATE_INTERVAL_S,
    ) -> Iterator[Waiting]:
        """Yield the ticket's place until it holds a slot (then has_slot is True) or leaves.

        The first place comes at once, and so does a move into the next round of starts
        (position <= slots); any other change at the ticket's own tick, at most one per
        ``update_every_s`` (backend.chat.fair_line_updates: the dozens who move up when a turn
        ends are not all sent a page update in the same instant). A set ``cancel`` (Stop)
        takes the ticket out of the line, as does closing this generator: a StopFlag wakes the
        line when set, any other Event is looked at every ``poll_s``.
        """
        schedule = UpdateSchedule(ticket, update_every_s)
        woken = cancel.waking(self._wake) if isinstance(cancel, StopFlag) else nullcontext()
        polled = cancel is not None and not isinstance(cancel, StopFlag)
        with woken:
            try:
                while True:
                    with self._cond:
                        if ticket.state is not TicketState.WAITING:
                            return
                        if cancel is not None and cancel.is_set():
                            self._leave_locked(ticket)
                            return
                        now = self._clock()
                        place = self._place(ticket)
                        wait_s = schedule.wait_s(place, now, self.slots)
                        if wait_s > 0:  # a change wakes it (notify_all), and so does a StopFlag
                            wait_s = min(wait_s, poll_s) if polled else wait_s
                            self._cond.wait(timeout=None if math.isinf(wait_s) else wait_s)
                            continue
                    schedule.reported(place, now)
                    yield place
            finally:
                if ticket.state is TicketState.WAITING:
                    self.release(ticket)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def place(self, ticket: Ticket) -> Waiting | None:
        """The ticket's place now, or None when it is not waiting."""
        with self._cond:
            if ticket.state is not TicketState.WAITING:
                return None
            return self._place(ticket)

    def expected_wait_s(self, position: int) -> float:
        """Seconds until the turn at this position starts: average turn x ceil(pos / slots)."""
        with self._cond:
            return self._expected(position)

    def stats(self) -> LineStats:
        with self._cond:
            return LineStats(
                slots=self.slots,
                running=self._running,
                waiting=self._waiting,
                users_waiting=len(self._queues),
                turn_s=self._turn_s,
                admitted_total=self._starts,
                completed_total=self._completed,
                left_total=self._left,
                refused_total=self._refused,
            )

    # -- under the lock ------------------------------------------------------------------

    def _check_room(self, user: str) -> None:
        running = self._running_by_user.get(user, 0)
        if self._running < self.slots and running < self.per_user_in_flight:
            return  # it starts at once (free slots imply nobody eligible is waiting)
        mine = len(self._queues.get(user, ()))
        retry_after_s = self._expected(1)
        at_own_limit = mine >= self.max_waiting_per_user
        if at_own_limit and (mine or running >= self.per_user_in_flight):
            self._refused += 1
            raise TooManyWaiting(mine, running, self._waiting, retry_after_s)
        if at_own_limit or self._waiting >= self.max_waiting:
            self._refused += 1  # at_own_limit here: nobody may wait (max_waiting_per_user=0)
            raise LineFull(self._waiting, retry_after_s)

    def _dispatch(self) -> list[float]:
        """Start waiting turns while slots are free; returns how long each one waited."""
        waits: list[float] = []
        while self._running < self.slots:
            best: tuple[tuple[float, int], str] | None = None
            for user, queue in self._queues.items():
                if self._running_by_user.get(user, 0) >= self.per_user_in_flight:
                    continue
                key = (queue[0].round, queue[0].seq)
                if best is None or key < best[0]:
                    best = (key, user)
            if best is None:
                break
            waits.append(self._start(best[1]))
        return waits

    def _start(self, user: str) -> float:
        queue = self._queues[user]
        ticket = queue.popleft()
        if not queue:
            del self._queues[user]
        self._starts += 1
        self._running_by_user[user] = self._running_by_user.get(user, 0) + 1
        # One round passes when every user in the line could have started one turn, and no
        # faster than the slots allow: a lone user's start while other slots stand free is not
        # a whole round, so people who come just after rank ahead of that user's next turn.
        self._round = max(self._round + 1 / max(len(self._last_round), self.slots), ticket.round)
        self._running += 1
        self._waiting -= 1
        ticket.state = TicketState.RUNNING
        ticket.admitted_at = self._clock()
        return max(ticket.admitted_at - ticket.joined_at, 0.0)

    def _remove_waiting(self, ticket: Ticket) -> None:
        queue = self._queues[ticket.user]
        queue.remove(ticket)
        if not queue:
            del self._queues[ticket.user]
        self._waiting -= 1
        self._left += 1
        ticket.state = TicketState.LEFT
        if self._last_round.get(ticket.user) == ticket.round:  # their latest: give it back
            self._last_round[ticket.user] = queue[-1].round if queue else ticket.round - 1
        self._forget_if_idle(ticket.user)

    def _leave_locked(self, ticket: Ticket) -> None:
        self._remove_waiting(ticket)
        self._changed()

    def _free_slot(self, ticket: Ticket, engine_s: float | None, record: bool) -> None:
        self._running -= 1
        self._running_by_user[ticket.user] -= 1
        if not self._running_by_user[ticket.user]:
            del self._running_by_user[ticket.user]
        self._completed += 1
        ticket.state = TicketState.DONE
        if record:
            held = engine_s
            if held is None and ticket.admitted_at is not None:
                held = self._clock() - ticket.admitted_at
            if held is not None and math.isfinite(held) and held >= 0:
                self._sample(held)
        self._forget_if_idle(ticket.user)

    def _sample(self, seconds: float) -> None:
        if self._sampled:
            self._turn_s += self._alpha * (seconds - self._turn_s)
        else:
            self._turn_s, self._sampled = seconds, True  # the prior only stands in until now

    def _round_for(self, user: str) -> float:
        if user not in self._last_round:
            return self._round
        return max(self._round + 1, self._last_round[user] + 1)

    def _forget_if_idle(self, user: str) -> None:
        if user not in self._queues and user not in self._running_by_user:
            self._last_round.pop(user, None)

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def _expected(self, position: int) -> float:
        return self._turn_s * math.ceil(position / self.slots)

    def _place(self, ticket: Ticket) -> Waiting:
        position = self._projected_positions()[ticket]
        return Waiting(position, position - 1, self._expected(position))

    def _projected_positions(self) -> dict[Ticket, int]:
        """Every waiting ticket's 1-based position: by (round, join order)."""
        version, positions = self._positions
        if version != self._version:
            waiting = [t for queue in self._queues.values() for t in queue]
            waiting.sort(key=lambda t: (t.round, t.seq))
            positions = {t: i for i, t in enumerate(waiting, start=1)}
            self._positions = (self._version, positions)
        return positions

    # -- outside the lock ----------------------------------------------------------------

    def _report(self, waits: list[float]) -> None:
        if self._on_wait is None:
            return
        for seconds in waits:
            try:
                self._on_wait(seconds)
            except Exception:
                log.exception("the fair line's on_wait callback failed")


def _check_count(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be a whole number of at least {least}: {value!r}")
