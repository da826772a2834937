"""What the fair line says to people: places in line and refusals, in words."""

from __future__ import annotations

import pytest

from backend.chat.fair_line_values import LineFull, TooManyWaiting, Waiting, whole_seconds


@pytest.mark.parametrize(
    ("position", "text"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"),
     (21, "21st"), (22, "22nd"), (101, "101st"), (111, "111th")],
)  # fmt: skip
def test_waiting_describes_the_place_in_words(position, text):
    place = Waiting(position=position, people_ahead=position - 1, expected_wait_s=7.01)
    assert place.describe() == f"{text} in line · about 8 s"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (59.5, 60), (float("inf"), 1), (float("nan"), 1)],
)
def test_seconds_are_rounded_up_and_never_zero(seconds, shown):
    assert whole_seconds(seconds) == shown


def test_refusals_carry_their_numbers():
    full = LineFull(people_ahead=12, retry_after_s=30.2)
    assert (full.people_ahead, full.retry_after_s) == (12, 30.2)
    assert str(full) == "busy: 12 people ahead, try again in about 31 s"
    mine = TooManyWaiting(waiting=1, running=1, people_ahead=3, retry_after_s=4.0)
    assert str(mine).startswith("You already have 1 reply waiting in line")
    assert (mine.waiting, mine.running, mine.people_ahead) == (1, 1, 3)
