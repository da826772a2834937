"""The fair line under real threads: caps never exceeded, nothing leaks, nothing deadlocks."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from backend.chat.fair_line import FairLine
from backend.chat.fair_line_values import LineRefused, TicketState

JOIN_TIMEOUT_S = 60


class Occupancy:
    """Counts turns inside their slot, overall and per user, and keeps the peaks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.by_user: Counter[str] = Counter()
        self.peak_by_user: Counter[str] = Counter()
        self.served = 0

    def enter(self, user: str) -> None:
        with self._lock:
            self.now += 1
            self.by_user[user] += 1
            self.peak = max(self.peak, self.now)
            self.peak_by_user[user] = max(self.peak_by_user[user], self.by_user[user])

    def leave(self, user: str) -> None:
        with self._lock:
            self.now -= 1
            self.by_user[user] -= 1
            self.served += 1


def run_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not [t.name for t in threads if t.is_alive()], "a turn never finished: deadlock?"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fifty_threads_never_exceed_the_slots_or_a_users_cap_and_leak_nothing(seed):
    rng = random.Random(seed)
    line = FairLine(slots=3, per_user_in_flight=2, max_waiting=100, max_waiting_per_user=50)
    occupancy = Occupancy()
    outcomes: Counter[str] = Counter()
    outcome_lock = threading.Lock()
    users = ["greedy"] * 25 + [f"user{i % 6}" for i in range(25)]  # one user sends half
    plans = [(user, rng.random() * 0.004, rng.random()) for user in users]
    stops = [threading.Event() for _ in plans]

    def turn(index: int) -> None:
        user, hold_s, fate = plans[index]
        cancel = stops[index]
        with line.join(user) as ticket:
            for _ in line.wait(ticket, cancel, poll_s=0.005):
                if fate < 0.15:
                    cancel.set()  # Stop pressed while waiting
            result = hold(ticket, user, hold_s, fate) if ticket.has_slot else "left"
        with outcome_lock:
            outcomes[result] += 1

    def hold(ticket, user: str, hold_s: float, fate: float) -> str:
        try:
            with line.slot(ticket):
                occupancy.enter(user)
                try:
                    time.sleep(hold_s)
                    if fate > 0.85:
                        raise RuntimeError("the engine failed mid-reply")
                finally:
                    occupancy.leave(user)
        except RuntimeError:
            return "failed"
        return "served"

    run_all([threading.Thread(target=turn, args=(i,), name=f"turn{i}") for i in range(50)])

    assert occupancy.peak <= 3
    assert max(occupancy.peak_by_user.values()) <= 2
    assert sum(outcomes.values()) == 50
    assert outcomes["served"] + outcomes["failed"] == occupancy.served
    stats = line.stats()
    assert (stats.running, stats.waiting, stats.users_waiting) == (0, 0, 0)
    assert stats.completed_total == occupancy.served
    assert stats.left_total == outcomes["left"]
    assert stats.admitted_total == occupancy.served


def test_threads_are_served_in_the_fair_order_not_the_order_they_came():
    line = FairLine(slots=1, per_user_in_flight=1, max_waiting=20, max_waiting_per_user=10)
    served: list[str] = []
    tickets = [line.join(user) for user in "AAAAABC"]  # A1 holds the one slot

    def turn(ticket) -> None:
        with ticket:
            for _ in line.wait(ticket, threading.Event(), poll_s=0.005):
                pass
            with line.slot(ticket):
                served.append(ticket.user)  # one slot: entries cannot interleave

    run_all([threading.Thread(target=turn, args=(t,)) for t in reversed(tickets)])
    assert "".join(served) == "ABCAAAA"


def test_a_full_line_refuses_the_overflow_at_once_while_the_rest_are_served():
    line = FairLine(slots=2, per_user_in_flight=1, max_waiting=5, max_waiting_per_user=1)
    gate = threading.Event()
    refused: list[str] = []
    served: list[str] = []
    lock = threading.Lock()
    tickets = []
    for i in range(12):
        try:
            tickets.append(line.join(f"user{i}"))
        except LineRefused as exc:
            refused.append(str(exc))
    assert len(tickets) == 7 and len(refused) == 5
    assert set(refused) == {"busy: 5 people ahead, try again in about 20 s"}

    def turn(ticket) -> None:
        with ticket:
            for _ in line.wait(ticket, threading.Event(), poll_s=0.005):
                pass
            with line.slot(ticket):
                gate.wait(JOIN_TIMEOUT_S)
                with lock:
                    served.append(ticket.user)

    threads = [threading.Thread(target=turn, args=(t,)) for t in tickets]
    gate.set()
    run_all(threads)
    assert sorted(served) == sorted(t.user for t in tickets)
    assert all(t.state is TicketState.DONE for t in tickets)
