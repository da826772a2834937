"""The login throttle's pure parts: turns per account, booked starts per address."""

from __future__ import annotations

import asyncio

import pytest

from backend.auth.login_throttle import (
    ADDRESS_FREE_FAILURES,
    AddressThrottle,
    TakeTurns,
    TooManyWaiting,
    identity,
)
from tests.support.asyncio_run import run_coroutine


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_names_differing_in_case_are_one_identity() -> None:
    assert identity(" BOB ") == identity("bob") == "bob"
    assert identity(None) == ""


def test_turns_run_one_at_a_time_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        turns, log = TakeTurns(), []

        async def attempt(index: int) -> None:
            async with turns.turn("bob"):
                log.append(f"start {index}")
                await asyncio.sleep(0.01)
                log.append(f"end {index}")

        await asyncio.gather(*(attempt(i) for i in range(3)))
        assert turns.waiting("bob") == 0  # the lock is dropped once nobody needs it
        return log

    assert run_coroutine(scenario()) == [
        "start 0", "end 0", "start 1", "end 1", "start 2", "end 2"
    ]  # fmt: skip


def test_turns_for_different_names_do_not_wait_for_each_other() -> None:
    async def scenario() -> list[str]:
        turns, log = TakeTurns(), []

        async def attempt(name: str) -> None:
            async with turns.turn(name):
                log.append(f"start {name}")
                await asyncio.sleep(0.01)
                log.append(f"end {name}")

        await asyncio.gather(attempt("a"), attempt("b"))
        return log

    assert run_coroutine(scenario())[:2] == ["start a", "start b"]


def test_more_waiting_than_allowed_is_refused_at_once() -> None:
    async def scenario() -> list[str]:
        turns = TakeTurns(max_waiting=2)
        release = asyncio.Event()

        async def attempt() -> str:
            try:
                async with turns.turn("bob"):
                    await release.wait()
                    return "ran"
            except TooManyWaiting:
                return "refused"

        tasks = [asyncio.create_task(attempt()) for _ in range(3)]
        await asyncio.sleep(0.01)
        release.set()
        return sorted(await asyncio.gather(*tasks))

    assert run_coroutine(scenario()) == ["ran", "ran", "refused"]


def test_an_address_is_not_slowed_before_its_free_failures_are_used() -> None:
    throttle = AddressThrottle(free_failures=3, clock=FakeClock())
    for _ in range(4):  # the 3 free failures, and a 4th that the next attempt pays for
        assert throttle.book("10.0.0.1") == 0
        throttle.record("10.0.0.1", failed=True)
    assert throttle.book("10.0.0.1") == pytest.approx(0.25)
    assert throttle.book("10.0.0.2") == 0  # another address is untouched


def test_parallel_attempts_from_a_slowed_address_are_booked_one_after_another() -> None:
    clock = FakeClock()
    throttle = AddressThrottle(free_failures=0, base_s=0.25, max_s=2.0, clock=clock)
    for _ in range(3):
        throttle.record("10.0.0.1", failed=True)  # 3 failures over none free: 1 s each
    waits = [throttle.book("10.0.0.1") for _ in range(4)]  # sent at once, none answered yet
    assert waits == pytest.approx([1.0, 2.0, 3.0, 4.0])


def test_address_failures_expire_after_the_window() -> None:
    clock = FakeClock()
    throttle = AddressThrottle(free_failures=1, window_s=60, clock=clock)
    throttle.record("10.0.0.1", failed=True)
    throttle.record("10.0.0.1", failed=True)
    assert throttle.book("10.0.0.1") > 0
    clock.now += 61
    assert throttle.recent_failures("10.0.0.1") == 0
    assert throttle.book("10.0.0.1") == 0


def test_successes_do_not_clear_an_addresses_failures() -> None:
    throttle = AddressThrottle(clock=FakeClock())
    for _ in range(ADDRESS_FREE_FAILURES + 1):
        throttle.record("10.0.0.1", failed=True)
    throttle.record("10.0.0.1", failed=False)  # a spray that includes its own valid account
    assert throttle.recent_failures("10.0.0.1") == ADDRESS_FREE_FAILURES + 1
    assert throttle.book("10.0.0.1") > 0
