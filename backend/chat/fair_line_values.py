"""What the fair line hands out: tickets, a place in line, counters, why a join was refused."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Protocol

from backend.units import counted


class _Line(Protocol):
    def release(
        self, ticket: Ticket, *, engine_s: float | None = ..., record: bool = ...
    ) -> None: ...


class StopFlag(threading.Event):
    """A turn's Stop flag that also wakes what waits for it: a turn waiting in the fair line
    leaves at once, without looking at the flag every few hundredths of a second."""

    def __init__(self) -> None:
        super().__init__()
        self._wakers: list[Callable[[], None]] = []
        self._wakers_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._wakers_lock:
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    @contextmanager
    def waking(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call `wake` when the flag is set, for the duration of the block."""
        with self._wakers_lock:
            self._wakers.append(wake)
        try:
            yield
        finally:
            with self._wakers_lock:
                self._wakers.remove(wake)


def whole_seconds(seconds: float) -> int:
    """Seconds as a person reads them in "about N s": rounded up, at least 1."""
    if not math.isfinite(seconds):
        return 1
    return max(1, math.ceil(seconds))


def ordinal(number: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def people(count: int) -> str:
    return counted(count, "person", "people")


def replies(count: int) -> str:
    return counted(count, "reply", "replies")


@dataclass(frozen=True)
class Waiting:
    """A waiting turn's place: position 1 is the next to start; people_ahead = position - 1."""

    position: int
    people_ahead: int
    expected_wait_s: float

    def describe(self) -> str:
        """What the chat shows while waiting, e.g. "2nd in line · about 8 s"."""
        return f"{ordinal(self.position)} in line · about {whole_seconds(self.expected_wait_s)} s"


@dataclass(frozen=True)
class LineStats:
    """Counters for metrics (hearth_chat_queue_depth and friends); a snapshot, taken under lock."""

    slots: int
    running: int
    waiting: int
    users_waiting: int
    turn_s: float  # the moving average of one turn's engine time (the prior until one finished)
    admitted_total: int
    completed_total: int
    left_total: int  # stopped or went away while waiting
    refused_total: int  # LineFull and TooManyWaiting together


class LineRefused(Exception):
    """A turn could not join the line; the message is a sentence a user can read."""

    def __init__(self, message: str, people_ahead: int, retry_after_s: float) -> None:
        super().__init__(message)
        self.people_ahead = people_ahead
        self.retry_after_s = retry_after_s


class LineFull(LineRefused):
    """Every place in the line is taken (max_waiting)."""

    def __init__(self, people_ahead: int, retry_after_s: float) -> None:
        super().__init__(
            f"busy: {people(people_ahead)} ahead, "
            f"try again in about {whole_seconds(retry_after_s)} s",
            people_ahead,
            retry_after_s,
        )


class TooManyWaiting(LineRefused):
    """This user already has as many turns waiting as one user may (max_waiting_per_user)."""

    def __init__(self, waiting: int, running: int, people_ahead: int, retry_after_s: float) -> None:
        about = f"about {whole_seconds(retry_after_s)} s"
        if waiting:
            message = (
                f"You already have {replies(waiting)} waiting in line, the most one person may "
                f"have; wait for one to start or stop one, then try again ({about})."
            )
        else:
            message = (
                f"You already have {replies(running)} in progress, the most one person may have "
                f"at once; wait for one to finish, then try again ({about})."
            )
        super().__init__(message, people_ahead, retry_after_s)
        self.waiting = waiting
        self.running = running


class NotAdmitted(RuntimeError):
    """A slot was asked for with a ticket that does not hold one (a bug in the caller)."""


class TicketState(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"  # held a slot and gave it back
    LEFT = "left"  # left the line before it started


class Ticket:
    """One turn's place in a FairLine; its state only changes under the line's lock."""

    __slots__ = ("_line", "admitted_at", "joined_at", "round", "seq", "state", "user")

    def __init__(self, line: _Line, user: str, seq: int, joined_at: float, round_: float) -> None:
        self._line = line
        self.user = user
        self.seq = seq  # join order
        self.round = round_  # the fair-queueing round it starts in (see backend.chat.fair_line)
        self.joined_at = joined_at
        self.admitted_at: float | None = None
        self.state = TicketState.WAITING

    @property
    def has_slot(self) -> bool:
        """True while this turn holds one of the engine's slots."""
        return self.state is TicketState.RUNNING

    def release(self, *, engine_s: float | None = None, record: bool = True) -> None:
        """Leave the line or free the slot; idempotent. See FairLine.release."""
        self._line.release(self, engine_s=engine_s, record=record)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._line.release(self, record=exc_type is None)

    def __repr__(self) -> str:
        return (
            f"Ticket(user={self.user!r}, seq={self.seq}, round={self.round:g}, "
            f"state={self.state.value})"
        )
