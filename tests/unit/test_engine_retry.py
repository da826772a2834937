"""Retrying Ollama's 503 "server busy": backoff with jitter, then a sentence that explains."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from backend.engines.base import EngineError, EngineUnavailable
from backend.engines.retry import (
    OLLAMA_BUSY_TEXT,
    EngineBusy,
    backoff_delay_s,
    is_busy_message,
    retry_busy,
    retry_busy_stream,
)


class Flaky:
    """A call that is busy `busy` times, then answers."""

    def __init__(self, busy: int, answer: object = "reply") -> None:
        self.busy = busy
        self.answer = answer
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.busy:
            raise EngineBusy(f"Ollama said: {OLLAMA_BUSY_TEXT} (try {self.calls})")
        return self.answer


def test_busy_engine_is_retried_with_growing_delays_until_it_answers():
    call, slept = Flaky(busy=3), []
    result = retry_busy(call, attempts=4, base_delay_s=0.5, sleep=slept.append, jitter=lambda: 1.0)
    assert result == "reply"
    assert call.calls == 4
    assert slept == [0.5, 1.0, 2.0]


def test_still_busy_after_every_attempt_explains_and_keeps_the_cause():
    call, slept = Flaky(busy=10), []
    with pytest.raises(EngineBusy) as raised:
        retry_busy(call, attempts=3, base_delay_s=1.0, sleep=slept.append, jitter=lambda: 1.0)
    message = str(raised.value)
    assert call.calls == 3
    assert "turned this reply away 3 times over about 3 s" in message
    assert "OLLAMA_MAX_QUEUE" in message
    assert "(try 3)" in message
    assert isinstance(raised.value.__cause__, EngineBusy)


def test_one_attempt_means_no_retry_and_no_sleep():
    call, slept = Flaky(busy=1), []
    with pytest.raises(EngineBusy, match="turned this reply away once"):
        retry_busy(call, attempts=1, sleep=slept.append)
    assert call.calls == 1 and slept == []


@pytest.mark.parametrize("error", [EngineUnavailable("down"), EngineError("bad"), KeyError("x")])
def test_other_errors_are_not_retried(error):
    calls = []

    def call() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        retry_busy(call, attempts=5, sleep=lambda _: None)
    assert len(calls) == 1


def test_stop_during_backoff_gives_up_at_once():
    cancel = threading.Event()
    call = Flaky(busy=10)

    def sleep(_: float) -> None:
        cancel.set()  # the user pressed Stop while we waited to retry

    with pytest.raises(EngineBusy, match=r"\(try 1\)$"):
        retry_busy(call, attempts=5, sleep=sleep, cancel=cancel)
    assert call.calls == 1


@pytest.mark.parametrize("attempts", [0, -1, True, 2.0, None])
def test_attempts_must_be_a_positive_whole_number(attempts):
    with pytest.raises(ValueError, match="attempts"):
        retry_busy(lambda: None, attempts=attempts)


@pytest.mark.parametrize("jitter", [0.0, 0.3, 1.0, 7.0, -2.0])
def test_delays_are_jittered_within_half_to_one_step_and_capped(jitter):
    for attempt in range(1, 12):
        step = min(8.0, 0.5 * 2 ** (attempt - 1))
        delay = backoff_delay_s(attempt, 0.5, 8.0, lambda j=jitter: j)
        assert step / 2 <= delay <= step


def test_a_stream_is_retried_only_before_its_first_item():
    starts = Flaky(busy=2, answer=None)

    def start() -> Iterator[str]:
        starts()
        yield "Hel"
        yield "lo"

    slept: list[float] = []
    items = list(retry_busy_stream(start, attempts=3, sleep=slept.append, jitter=lambda: 0.0))
    assert items == ["Hel", "lo"]
    assert starts.calls == 3 and len(slept) == 2


def test_a_stream_busy_after_its_first_item_is_not_repeated():
    starts = []

    def start() -> Iterator[str]:
        starts.append(1)
        yield "Hel"
        raise EngineBusy(OLLAMA_BUSY_TEXT)

    stream = retry_busy_stream(start, attempts=3, sleep=lambda _: None)
    assert next(stream) == "Hel"
    with pytest.raises(EngineBusy, match="maximum pending"):
        next(stream)
    assert len(starts) == 1


def test_an_empty_stream_ends_without_retrying():
    assert list(retry_busy_stream(lambda: iter(()), sleep=lambda _: None)) == []


@pytest.mark.parametrize(
    ("text", "busy"),
    [
        (OLLAMA_BUSY_TEXT, True),
        ("server busy, please try again.\nmaximum pending requests exceeded", True),
        ("Server Busy", True),
        ("model 'x' not found", False),
        ("", False),
    ],
)
def test_ollamas_busy_text_is_recognised(text, busy):
    assert is_busy_message(text) is busy


def test_busy_is_a_kind_of_unavailable():
    assert issubclass(EngineBusy, EngineUnavailable)
