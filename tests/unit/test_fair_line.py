"""The fair line's rules: order, caps, refusals, leaving, expected wait; driven by a fake clock."""

from __future__ import annotations

import itertools
import logging
import queue
import threading

import pytest

from backend.chat.fair_line import FairLine
from backend.chat.fair_line_updates import update_tick
from backend.chat.fair_line_values import (
    LineFull,
    NotAdmitted,
    StopFlag,
    Ticket,
    TicketState,
    TooManyWaiting,
    Waiting,
)

JOIN_TIMEOUT_S = 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_line(slots: int = 1, cap: int = 1, max_waiting: int = 32, **options) -> FairLine:
    options.setdefault("max_waiting_per_user", 8)
    options.setdefault("clock", FakeClock())
    return FairLine(slots, cap, max_waiting, **options)


def serve_all(line: FairLine, tickets: list[Ticket]) -> list[str]:
    """Release running turns one at a time, oldest start first; the order turns started in."""
    started = sorted((t for t in tickets if t.has_slot), key=lambda t: t.admitted_at or 0)
    order: list[Ticket] = list(started)
    while started:
        started.pop(0).release()
        new = [t for t in tickets if t.has_slot and t not in order]
        order += new
        started += new
    return [f"{t.user}{tickets_of(tickets, t.user).index(t) + 1}" for t in order]


def tickets_of(tickets: list[Ticket], user: str) -> list[Ticket]:
    return [t for t in tickets if t.user == user]


def join_many(line: FairLine, users: str) -> list[Ticket]:
    return [line.join(user) for user in users]


def next_update(updates: queue.Queue, clock: FakeClock, step_s: float = 0.25) -> object:
    """The waiter's next update, moving the line's clock on in steps until its tick comes: an
    interval (1 s) after its last update at the soonest, then within one more."""
    for _ in range(int(2.0 / step_s) + 1):
        try:
            return updates.get(timeout=0.1)
        except queue.Empty:
            clock.now += step_s
    return updates.get(timeout=JOIN_TIMEOUT_S)


def test_a_users_second_request_waits_behind_everyones_first():
    line = make_line()
    tickets = join_many(line, "AAAAABC")
    assert serve_all(line, tickets) == ["A1", "B1", "C1", "A2", "A3", "A4", "A5"]


def test_users_with_several_waiting_take_turns_round_robin():
    line = make_line()
    tickets = join_many(line, "AAAAABBCC")
    order = serve_all(line, tickets)
    assert order == ["A1", "B1", "C1", "A2", "B2", "C2", "A3", "A4", "A5"]


def test_positions_shown_while_waiting_are_the_order_served():
    line = make_line(slots=2, cap=2)
    tickets = join_many(line, "AAAAABBCCD")
    shown = {t: line.place(t) for t in tickets}
    running = [t for t in tickets if shown[t] is None]
    waiting = sorted((t for t in tickets if shown[t] is not None), key=lambda t: shown[t].position)
    assert [shown[t].position for t in waiting] == list(range(1, len(waiting) + 1))
    assert all(shown[t].people_ahead == shown[t].position - 1 for t in waiting)
    order = serve_all(line, tickets)
    named = {t: f"{t.user}{tickets_of(tickets, t.user).index(t) + 1}" for t in tickets}
    assert order == [named[t] for t in running + waiting]


def test_a_user_with_a_turn_running_goes_after_users_with_none():
    line = make_line(slots=3, cap=3)
    a1, a2, b1 = join_many(line, "AAB")
    a3, c1 = join_many(line, "AC")
    assert line.place(c1).position == 1 and line.place(a3).position == 2
    b1.release()
    assert c1.has_slot and not a3.has_slot
    assert a1.has_slot and a2.has_slot


def test_per_user_cap_limits_running_turns_even_with_free_slots():
    line = make_line(slots=4, cap=2)
    a1, a2, a3 = join_many(line, "AAA")
    assert (a1.has_slot, a2.has_slot, a3.has_slot) == (True, True, False)
    assert line.stats().running == 2 and line.stats().waiting == 1
    b1 = line.join("B")
    assert b1.has_slot
    a1.release()
    assert a3.has_slot
    assert line.stats().running == 3


def test_too_many_waiting_for_one_user_is_refused_with_a_sentence():
    line = make_line(max_waiting_per_user=2, prior_turn_s=12.0)
    join_many(line, "AAA")
    with pytest.raises(TooManyWaiting) as refused:
        line.join("A")
    assert "You already have 2 replies waiting in line" in str(refused.value)
    assert "about 12 s" in str(refused.value)
    assert line.join("B").state is TicketState.WAITING
    assert line.stats().refused_total == 1


def test_full_line_is_refused_with_people_ahead_and_when_to_retry():
    line = make_line(slots=2, max_waiting=3, prior_turn_s=10.0)
    join_many(line, "uvwxy")
    assert line.stats().waiting == 3
    with pytest.raises(LineFull) as refused:
        line.join("z")
    assert refused.value.people_ahead == 3
    assert refused.value.retry_after_s == 10.0
    assert str(refused.value) == "busy: 3 people ahead, try again in about 10 s"
    assert line.stats().waiting == 3 and line.stats().refused_total == 1


def test_full_line_message_rounds_up_and_speaks_of_one_person():
    clock = FakeClock()
    line = make_line(max_waiting=1, clock=clock)
    first = line.join("u")
    clock.now += 7.2
    first.release()  # a 7.2 s turn: the average turn is now 7.2 s
    join_many(line, "vw")
    with pytest.raises(LineFull, match=r"^busy: 1 person ahead, try again in about 8 s$"):
        line.join("x")


def test_a_turn_that_can_start_at_once_is_never_refused():
    line = make_line(slots=2, cap=1, max_waiting=0, max_waiting_per_user=0)
    assert line.join("A").has_slot
    with pytest.raises(TooManyWaiting, match="You already have 1 reply in progress"):
        line.join("A")
    assert line.join("B").has_slot
    with pytest.raises(LineFull):
        line.join("C")


def test_leaving_shifts_everyone_behind_by_one_and_never_starts():
    line = make_line()
    a, b, c, d, e = join_many(line, "ABCDE")
    assert [line.place(t).position for t in (b, c, d, e)] == [1, 2, 3, 4]
    c.release()
    assert c.state is TicketState.LEFT
    assert [line.place(t).position for t in (b, d, e)] == [1, 2, 3]
    assert line.place(c) is None
    assert serve_all(line, [a, b, c, d, e]) == ["A1", "B1", "D1", "E1"]
    assert line.stats().left_total == 1 and line.stats().completed_total == 4


@pytest.mark.parametrize(
    ("flag", "poll_s"),
    [(threading.Event, 0.01), (StopFlag, 60.0)],
    ids=["a plain event, polled", "a stop flag, which wakes the line (no 60 s poll)"],
)
def test_stop_while_waiting_leaves_the_line_and_the_others_move_up(flag, poll_s):
    line = make_line()
    joined = join_many(line, "ABCD")
    cancel = flag()
    updates: queue.Queue[Waiting] = queue.Queue()

    def wait_for_c() -> None:
        for place in line.wait(joined[2], cancel, poll_s=poll_s, update_every_s=60.0):
            updates.put(place)

    waiter = threading.Thread(target=wait_for_c)
    waiter.start()
    assert updates.get(timeout=JOIN_TIMEOUT_S).position == 2
    cancel.set()
    waiter.join(JOIN_TIMEOUT_S)
    assert not waiter.is_alive()
    assert joined[2].state is TicketState.LEFT and not joined[2].has_slot
    assert line.place(joined[1]).position == 1 and line.place(joined[3]).position == 2
    assert line.stats().waiting == 2
    assert getattr(cancel, "_wakers", []) == []  # the ended wait no longer listens to it


def test_closing_the_wait_generator_leaves_the_line():
    line = make_line()
    first, second = join_many(line, "AB")
    updates = line.wait(second)
    assert next(updates) == Waiting(position=1, people_ahead=0, expected_wait_s=20.0)
    updates.close()
    assert second.state is TicketState.LEFT
    first.release()
    assert line.stats().running == 0


def test_waiting_for_a_turn_that_started_at_once_yields_nothing():
    line = make_line()
    ticket = line.join("A")
    assert list(line.wait(ticket, threading.Event())) == []
    assert ticket.has_slot


def test_wait_reports_each_new_position_then_ends_with_a_slot():
    clock = FakeClock()
    line = make_line(clock=clock)
    tickets = join_many(line, "ABCD")
    updates: queue.Queue[Waiting | None] = queue.Queue()

    def wait_for_d() -> None:
        for place in line.wait(tickets[3], threading.Event(), poll_s=0.01):
            updates.put(place)
        updates.put(None)

    waiter = threading.Thread(target=wait_for_d)
    waiter.start()
    seen = [updates.get(timeout=JOIN_TIMEOUT_S)]
    for running in tickets[:3]:
        running.release()
        seen.append(next_update(updates, clock))
    waiter.join(JOIN_TIMEOUT_S)
    assert not waiter.is_alive()
    assert [place.position if place else None for place in seen] == [3, 2, 1, None]
    assert tickets[3].has_slot


def test_moves_within_the_update_interval_are_reported_once_but_the_next_round_at_once():
    """Dozens waiting move at every start: each person gets at most one update a second."""
    clock = FakeClock()
    line = make_line(slots=2, cap=1, clock=clock)
    tickets = join_many(line, "ABCDEFGH")  # A, B run; C..H wait at 1..6
    updates: queue.Queue[Waiting | None] = queue.Queue()
    cancel = threading.Event()

    def wait_for_h() -> None:
        for place in line.wait(tickets[7], cancel, poll_s=0.01, update_every_s=1.0):
            updates.put(place)
        updates.put(None)

    waiter = threading.Thread(target=wait_for_h)
    waiter.start()
    assert updates.get(timeout=JOIN_TIMEOUT_S).position == 6
    tickets[0].release()  # H moves to 5, then to 4, within the same second: no update yet
    tickets[1].release()
    with pytest.raises(queue.Empty):
        updates.get(timeout=0.2)
    clock.now += 2.0  # the interval passed and H's tick came: the latest place, once
    assert updates.get(timeout=JOIN_TIMEOUT_S).position == 4
    tickets[2].release()
    tickets[3].release()  # H at 2: the next round (2 slots), reported at once
    assert updates.get(timeout=JOIN_TIMEOUT_S).position == 2
    with pytest.raises(queue.Empty):
        updates.get(timeout=0.1)
    cancel.set()
    waiter.join(JOIN_TIMEOUT_S)
    assert not waiter.is_alive()


def test_the_many_who_move_when_a_turn_ends_are_updated_spread_over_the_interval():
    """Not all in one instant: each waiting turn reports a change at its own tick."""
    line = make_line(slots=1, cap=1)
    tickets = join_many(line, "ABCDEFGHIJKL")  # A runs; 11 joined in the same instant wait
    ended_at = 1000.0 + 1.5  # a turn ends: everyone moves up one place
    delays = sorted(update_tick(t, ended_at, 1.0) - ended_at for t in tickets[1:])
    assert all(0.0 <= d < 1.0 for d in delays)  # each within an interval of the change
    gaps = [b - a for a, b in itertools.pairwise(delays)]
    assert min(gaps) > 0 and max(gaps) < 0.25  # spread over the interval, not bunched
    assert update_tick(tickets[1], ended_at, 0.0) == ended_at  # no interval: at once


def test_a_new_expected_wait_is_reported_once_the_update_interval_passed():
    clock = FakeClock()
    line = make_line(slots=2, cap=1, clock=clock, prior_turn_s=30.0)
    mine_running, other = join_many(line, "AB")
    mine_waiting = line.join("A")  # waits: A's one turn in flight is A's cap
    updates: queue.Queue[Waiting] = queue.Queue()
    cancel = threading.Event()

    def wait_for_a() -> None:
        for place in line.wait(mine_waiting, cancel, poll_s=0.01, update_every_s=1.0):
            updates.put(place)

    waiter = threading.Thread(target=wait_for_a)
    waiter.start()
    assert updates.get(timeout=JOIN_TIMEOUT_S) == Waiting(1, 0, 30.0)
    clock.now += 6.0
    other.release()  # B's 6 s turn: the estimate changes, the position does not
    assert next_update(updates, clock) == Waiting(1, 0, 6.0)
    cancel.set()
    waiter.join(JOIN_TIMEOUT_S)
    assert not waiter.is_alive() and mine_running.has_slot


def test_expected_wait_is_the_average_turn_times_rounds_of_slots():
    clock = FakeClock()
    line = make_line(slots=2, cap=1, clock=clock, prior_turn_s=20.0, ewma_alpha=0.2)
    tickets = join_many(line, "ABCDEFG")
    assert [line.place(t).expected_wait_s for t in tickets[2:]] == [20, 20, 40, 40, 60]
    clock.now += 10.0
    tickets[0].release()  # the first finished turn replaces the prior
    assert line.stats().turn_s == pytest.approx(10.0)
    clock.now += 10.0
    tickets[1].release()  # held 20 s: 10 + 0.2 * (20 - 10)
    assert line.stats().turn_s == pytest.approx(12.0)
    assert [line.place(t).expected_wait_s for t in tickets[4:]] == pytest.approx([12, 12, 24])
    assert line.place(tickets[6]).describe() == "3rd in line · about 24 s"


def test_engine_time_given_on_release_is_what_the_average_learns():
    clock = FakeClock()
    line = make_line(clock=clock)
    ticket = line.join("A")
    clock.now += 50.0
    ticket.release(engine_s=4.0)
    assert line.stats().turn_s == pytest.approx(4.0)


def test_slot_is_freed_when_the_turn_raises_and_the_next_one_starts():
    clock = FakeClock()
    line = make_line(clock=clock, prior_turn_s=20.0)
    first, second = join_many(line, "AB")
    with pytest.raises(RuntimeError, match="engine fell over"), line.slot(first):
        clock.now += 1.0
        raise RuntimeError("engine fell over")
    assert first.state is TicketState.DONE
    assert second.has_slot
    assert line.stats().running == 1
    assert line.stats().turn_s == 20.0  # a failed turn does not teach the average


def test_ticket_as_context_manager_leaves_or_frees_however_the_block_ends():
    line = make_line()
    first, second = join_many(line, "AB")
    with pytest.raises(KeyError), second:
        raise KeyError("closed tab")
    assert second.state is TicketState.LEFT
    with first:
        pass
    assert first.state is TicketState.DONE
    assert line.stats().running == 0 and line.stats().waiting == 0


def test_release_twice_counts_once():
    line = make_line()
    first, second = join_many(line, "AB")
    with line.slot(first):
        pass
    first.release()
    first.release()
    second.release()
    second.release()
    stats = line.stats()
    assert (stats.running, stats.waiting, stats.completed_total, stats.left_total) == (0, 0, 2, 0)


def test_a_slot_needs_a_ticket_that_holds_one():
    line = make_line()
    _, waiting = join_many(line, "AB")
    with pytest.raises(NotAdmitted), line.slot(waiting):
        pass
    assert waiting.state is TicketState.WAITING


def test_a_ticket_from_another_line_is_refused():
    ticket = make_line().join("A")
    with pytest.raises(ValueError, match="another line"):
        make_line().release(ticket)


def test_every_start_reports_how_long_it_waited(caplog):
    clock = FakeClock()
    waits: list[float] = []
    line = make_line(clock=clock, on_wait=waits.append)
    first, _ = join_many(line, "AB")
    clock.now += 5.0
    first.release()
    assert waits == [0.0, 5.0]

    def broken(_: float) -> None:
        raise RuntimeError("metrics down")

    other = make_line(on_wait=broken)
    with caplog.at_level(logging.ERROR):
        assert other.join("A").has_slot
    assert "on_wait callback failed" in caplog.text


def test_stats_count_queue_depth_and_users():
    line = make_line(slots=1)
    join_many(line, "AABBC")
    stats = line.stats()
    assert (stats.slots, stats.running, stats.waiting, stats.users_waiting) == (1, 1, 4, 3)
    assert stats.admitted_total == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("slots", 0),
        ("slots", True),
        ("slots", 1.5),
        ("slots", "4"),
        ("per_user_in_flight", 0),
        ("max_waiting", -1),
        ("max_waiting_per_user", None),
        ("prior_turn_s", 0.0),
        ("prior_turn_s", float("inf")),
        ("ewma_alpha", 0.0),
        ("ewma_alpha", 1.5),
    ],
)
def test_settings_the_line_cannot_use_are_refused_naming_them(name, value):
    arguments = {"slots": 1, "per_user_in_flight": 1, "max_waiting": 1, name: value}
    with pytest.raises(ValueError, match=name):
        FairLine(**arguments)


def test_people_sending_one_question_at_a_time_are_served_first_come_first_served():
    line = make_line()
    z1, a1, b1 = join_many(line, "ZAB")
    z1.release()
    a1.release()  # A was served; B is running now
    a2, c1 = join_many(line, "AC")  # A comes back before newcomer C
    b1.release()
    assert a2.has_slot and not c1.has_slot


def test_a_user_with_a_backlog_gets_one_start_per_round_while_others_keep_coming():
    line = make_line(max_waiting_per_user=20)
    backlog = [line.join("greedy") for _ in range(20)]
    regulars = {name: line.join(name) for name in ("r1", "r2", "r3", "r4")}
    starts = {name: 0 for name in ("greedy", *regulars)}
    for _ in range(50):
        running = next(t for t in [*backlog, *regulars.values()] if t.has_slot)
        running.release()
        if running.user != "greedy":
            regulars[running.user] = line.join(running.user)  # asks again at once
        started = next(t for t in [*backlog, *regulars.values()] if t.has_slot)
        starts[started.user] += 1
    assert all(9 <= count <= 11 for count in starts.values()), starts


def test_people_who_come_just_after_a_burst_rank_ahead_of_its_later_turns():
    """One user sends three at once into an idle line of 4 slots; three people come just after
    and take the free slots, a fourth waits. The burst's first start (alone in the line, other
    slots free) is not a whole round: the fourth person starts before the burst's second."""
    line = make_line(slots=4, cap=1)
    tickets = join_many(line, "GGG") + join_many(line, "abcd")
    assert [t.user for t in tickets if t.has_slot] == ["G", "a", "b", "c"]
    assert serve_all(line, tickets)[4:] == ["d1", "G2", "G3"]


def test_resize_starts_waiting_turns_in_the_new_slots_and_keeps_running_ones():
    line = make_line(slots=1, cap=1)
    first, second, third = (line.join(user) for user in "ABC")
    assert [t.has_slot for t in (first, second, third)] == [True, False, False]
    line.resize(2)
    assert [t.has_slot for t in (first, second, third)] == [True, True, False]
    line.resize(1)  # shrinking takes no slot back: the next start waits for two to end
    assert line.stats().running == 2 and not third.has_slot
    line.release(first)
    assert not third.has_slot
    line.release(second)
    assert third.has_slot
    with pytest.raises(ValueError):
        line.resize(0)


def test_a_stop_flag_calls_its_wakers_only_while_they_are_registered():
    stop, calls = StopFlag(), []
    with stop.waking(lambda: calls.append("woken")):
        stop.set()
    stop.set()
    assert calls == ["woken"] and stop.is_set()
