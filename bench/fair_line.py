"""Fair line vs a plain FIFO queue: fairness and queue wait for simulated staff, side by side.

    .venv/bin/python bench/fair_line.py                  # both scenarios, 30 simulated minutes
    .venv/bin/python bench/fair_line.py --duration 600 --slots 8 --think 30

A discrete-event simulation on a fake clock drives the real FairLine (and, as the baseline,
a plain FIFO queue with the same slots and the same max_waiting, which is what one shared
Gradio queue gives) against a fake engine that streams every reply at a fixed token rate
in each of its parallel slots. Each user asks, waits for the whole reply, thinks (random,
exponential), asks again; a refused join ("busy: ...") is retried after its retry_after_s
times a random 0.5-1.5. The greedy user keeps --burst requests outstanding (sends that many
at once and another as soon as one finishes). Both arms see the same per-user sequence of
reply lengths and pauses. No wall-clock timing is measured: the figures are simulated seconds
and tokens, so the run is deterministic for a seed and not disturbed by other load.

Prints `name: value` lines: requests, refused, Jain's fairness index over users' served
tokens, the greedy user's share, p50/p95 queue wait (all users and the others than the
greedy one), peak queue depth, and fair/FIFO ratios.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.chat.fair_line import FairLine
from backend.chat.fair_line_values import LineFull, LineRefused

GREEDY = "greedy"


class SimTicket(Protocol):
    user: str
    joined_at: float
    admitted_at: float | None

    @property
    def has_slot(self) -> bool: ...

    def release(self) -> None: ...


class SimLine(Protocol):
    def join(self, user: str) -> SimTicket: ...


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FifoTicket:
    def __init__(self, line: FifoLine, user: str, joined_at: float) -> None:
        self.line, self.user, self.joined_at = line, user, joined_at
        self.admitted_at: float | None = None
        self.state = "waiting"

    @property
    def has_slot(self) -> bool:
        return self.state == "running"

    def release(self) -> None:
        self.line.release(self)


class FifoLine:
    """The baseline: first come, first served, `slots` at once, no per-user rule."""

    def __init__(self, slots: int, max_waiting: int, clock: FakeClock, turn_s: float) -> None:
        self.slots, self.max_waiting, self.clock, self.turn_s = slots, max_waiting, clock, turn_s
        self.queue: deque[FifoTicket] = deque()
        self.running = 0

    def join(self, user: str) -> FifoTicket:
        if self.running >= self.slots and len(self.queue) >= self.max_waiting:
            raise LineFull(len(self.queue), self.turn_s)
        ticket = FifoTicket(self, user, self.clock())
        self.queue.append(ticket)
        self._dispatch()
        return ticket

    def release(self, ticket: FifoTicket) -> None:
        if ticket.state == "running":
            ticket.state = "done"
            self.running -= 1
            self._dispatch()

    def _dispatch(self) -> None:
        while self.running < self.slots and self.queue:
            ticket = self.queue.popleft()
            ticket.state, ticket.admitted_at = "running", self.clock()
            self.running += 1


@dataclass(frozen=True)
class Scenario:
    name: str
    users: int
    burst: int  # the greedy user's outstanding requests; 0: nobody is greedy
    slots: int
    tok_per_s: float
    think_s: float
    max_waiting: int
    per_user_in_flight: int
    duration_s: float
    seed: int
    reply_tokens: tuple[int, int] = (50, 400)


@dataclass
class Outcome:
    tokens: dict[str, float]
    waits: list[tuple[str, float]] = field(default_factory=list)
    requests: int = 0
    refused: int = 0
    peak_waiting: int = 0


class Simulation:
    """Users, a line and a fake engine on one event heap; nothing runs in real time."""

    def __init__(self, scenario: Scenario, line: SimLine, clock: FakeClock) -> None:
        self.s, self.line, self.clock = scenario, line, clock
        users = [GREEDY] if scenario.burst else []
        users += [f"user{i}" for i in range(scenario.users - len(users))]
        self.lengths = {u: random.Random(f"{scenario.seed}:len:{u}") for u in users}
        self.pauses = {u: random.Random(f"{scenario.seed}:think:{u}") for u in users}
        self.out = Outcome(tokens=dict.fromkeys(users, 0.0))
        self.events: list[tuple[float, int, str, object]] = []
        self.waiting: list[tuple[SimTicket, int]] = []
        self.running: dict[SimTicket, tuple[float, int]] = {}
        self.seq = 0
        for user in users:
            first = 0.0 if user == GREEDY else self.pauses[user].uniform(0, scenario.think_s)
            for _ in range(scenario.burst if user == GREEDY else 1):
                self.push(first, "ask", user)

    def push(self, at: float, kind: str, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, payload))

    def run(self) -> Outcome:
        while self.events and self.events[0][0] <= self.s.duration_s:
            at, _, kind, payload = heapq.heappop(self.events)
            self.clock.now = at
            if kind == "ask":
                self.ask(str(payload))
            else:
                self.finish(payload)  # type: ignore[arg-type]
            self.start_admitted()
        for ticket, (started, count) in self.running.items():  # replies still streaming
            streamed = (self.s.duration_s - started) * self.s.tok_per_s
            self.out.tokens[ticket.user] += min(count, streamed)
        return self.out

    def ask(self, user: str) -> None:
        self.out.requests += 1
        try:
            ticket = self.line.join(user)
        except LineRefused as refused:
            self.out.refused += 1
            # People retry roughly, not on the dot: exact retries phase-lock with the
            # releases and let the same few users win every free place.
            again = max(refused.retry_after_s, 1.0) * self.pauses[user].uniform(0.5, 1.5)
            self.push(self.clock.now + again, "ask", user)
            return
        low, high = self.s.reply_tokens
        self.waiting.append((ticket, self.lengths[user].randint(low, high)))
        self.out.peak_waiting = max(self.out.peak_waiting, len(self.waiting))

    def finish(self, ticket: SimTicket) -> None:
        _, count = self.running.pop(ticket)
        ticket.release()
        self.out.tokens[ticket.user] += count
        pause = (
            0.0
            if ticket.user == GREEDY
            else self.pauses[ticket.user].expovariate(1 / self.s.think_s)
        )
        self.push(self.clock.now + pause, "ask", ticket.user)

    def start_admitted(self) -> None:
        still = []
        for ticket, count in self.waiting:
            if not ticket.has_slot:
                still.append((ticket, count))
                continue
            self.out.waits.append((ticket.user, self.clock.now - ticket.joined_at))
            self.running[ticket] = (self.clock.now, count)
            self.push(self.clock.now + count / self.s.tok_per_s, "finish", ticket)
        self.waiting = still


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when everyone got the same, 1/n when one got everything."""
    total, squares = sum(values), sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 1.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def simulate(scenario: Scenario, arm: str) -> Outcome:
    clock = FakeClock()
    mean_turn_s = sum(scenario.reply_tokens) / 2 / scenario.tok_per_s
    line: SimLine
    if arm == "fair":
        line = FairLine(
            scenario.slots,
            scenario.per_user_in_flight,
            scenario.max_waiting,
            clock,
            max_waiting_per_user=max(scenario.burst, 1),
            prior_turn_s=mean_turn_s,
        )
    else:
        line = FifoLine(scenario.slots, scenario.max_waiting, clock, mean_turn_s)
    return Simulation(scenario, line, clock).run()


def summarise(scenario: Scenario, arm: str, out: Outcome) -> dict[str, float]:
    waits = [w for _, w in out.waits]
    others = [w for user, w in out.waits if user != GREEDY]
    figures = {
        "requests": out.requests,
        "refused": out.refused,
        "served_turns": len(out.waits),
        "jain_tokens": jain(list(out.tokens.values())),
        "wait_p50_s": percentile(waits, 0.50),
        "wait_p95_s": percentile(waits, 0.95),
        "peak_waiting": out.peak_waiting,
    }
    if scenario.burst:
        total = sum(out.tokens.values())
        figures["greedy_token_share"] = out.tokens[GREEDY] / total if total else 0.0
        figures["others_wait_p50_s"] = percentile(others, 0.50)
        figures["others_wait_p95_s"] = percentile(others, 0.95)
    return figures


def report(scenario: Scenario, emit: Callable[[str], object] = print) -> None:
    emit(
        f"# {scenario.name}: {scenario.users} users"
        + (f" (one keeps {scenario.burst} requests outstanding)" if scenario.burst else "")
        + f", {scenario.slots} slots x {scenario.tok_per_s:g} tok/s, think {scenario.think_s:g} s,"
        f" max_waiting {scenario.max_waiting}, {scenario.duration_s:g} s simulated"
    )
    results = {arm: summarise(scenario, arm, simulate(scenario, arm)) for arm in ("fair", "fifo")}
    for name in results["fair"]:
        for arm in ("fair", "fifo"):
            value = results[arm][name]
            emit(
                f"{scenario.name}.{arm}.{name}: {value:.3f}"
                if isinstance(value, float)
                else f"{scenario.name}.{arm}.{name}: {value}"
            )
    fair, fifo = results["fair"], results["fifo"]
    ratio = fair["jain_tokens"] / fifo["jain_tokens"]
    emit(f"{scenario.name}.jain_ratio_fair_over_fifo: {ratio:.2f}")
    key = "others_wait_p95_s" if scenario.burst else "wait_p95_s"
    if fair[key]:
        emit(f"{scenario.name}.{key}_ratio_fifo_over_fair: {fifo[key] / fair[key]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="simulated seconds")
    parser.add_argument("--slots", type=int, default=4, help="engine slots (OLLAMA_NUM_PARALLEL)")
    parser.add_argument("--rate", type=float, default=40.0, help="tokens/s per stream")
    parser.add_argument("--think", type=float, default=20.0, help="mean pause between turns, s")
    parser.add_argument("--max-waiting", type=int, default=64)
    parser.add_argument("--per-user", type=int, default=1, help="per-user turns running")
    parser.add_argument("--burst", type=int, default=10, help="the greedy user's requests")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    common = {
        "slots": args.slots,
        "tok_per_s": args.rate,
        "think_s": args.think,
        "max_waiting": args.max_waiting,
        "per_user_in_flight": args.per_user,
        "duration_s": args.duration,
        "seed": args.seed,
    }
    report(Scenario("greedy", users=50, burst=args.burst, **common))
    report(Scenario("load200", users=200, burst=0, **common))
    return 0


if __name__ == "__main__":
    sys.exit(main())
