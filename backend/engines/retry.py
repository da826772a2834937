"""Retrying an engine that says it is busy (Ollama's HTTP 503), with backoff, then explaining.

EngineBusy lives in backend/engines/base.py next to EngineUnavailable (re-exported here);
OllamaEngine's error mapping raises it for status 503 or ``is_busy_message(text)``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TypeVar

from backend.engines.base import EngineBusy

__all__ = [
    "OLLAMA_BUSY_TEXT",
    "BusyRetry",
    "EngineBusy",
    "backoff_delay_s",
    "is_busy_message",
    "retry_busy",
    "retry_busy_stream",
]

T = TypeVar("T")

# Ollama's ErrMaxQueue (server/sched.go), answered with HTTP 503 when OLLAMA_MAX_QUEUE is full.
OLLAMA_BUSY_TEXT = "server busy, please try again.  maximum pending requests exceeded"
DEFAULT_ATTEMPTS = 4
DEFAULT_BASE_DELAY_S = 0.5
DEFAULT_MAX_DELAY_S = 8.0


@dataclass(frozen=True)
class BusyRetry:
    """How a caller retries a busy engine: tries in all, and the backoff's first and last step."""

    attempts: int = DEFAULT_ATTEMPTS
    base_delay_s: float = DEFAULT_BASE_DELAY_S
    max_delay_s: float = DEFAULT_MAX_DELAY_S


def is_busy_message(text: str) -> bool:
    """Whether an engine's error text is Ollama's "server busy" refusal."""
    lowered = " ".join(text.lower().split())
    return "server busy" in lowered or "maximum pending requests exceeded" in lowered


def backoff_delay_s(
    attempt: int, base_delay_s: float, max_delay_s: float, jitter: Callable[[], float]
) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random (attempt >= 1)."""
    step = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
    return step / 2 + step / 2 * min(max(jitter(), 0.0), 1.0)


def retry_busy(
    call: Callable[[], T],
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay_s: float = DEFAULT_BASE_DELAY_S,
    *,
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    sleep: Callable[[float], object] = time.sleep,
    jitter: Callable[[], float] = random.random,
    cancel: threading.Event | None = None,
) -> T:
    """Call, retrying while it raises EngineBusy; after ``attempts`` tries, explain and raise.

    Pass ``sleep=cancel.wait`` with ``cancel`` so that Stop cuts a backoff short: once
    ``cancel`` is set, the last EngineBusy is raised as it was, without another try.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"attempts must be a whole number of at least 1: {attempts!r}")
    waited_s = 0.0
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except EngineBusy as exc:
            last = exc
        if attempt == attempts:
            break
        delay = backoff_delay_s(attempt, base_delay_s, max_delay_s, jitter)
        sleep(delay)
        waited_s += delay
        if cancel is not None and cancel.is_set():
            raise last
    tries = "once" if attempts == 1 else f"{attempts} times over about {waited_s:.0f} s"
    raise EngineBusy(
        f"The engine is busy: it turned this reply away {tries} because too many requests "
        f"are already waiting for it ({last}). Try again in a minute; if this keeps "
        "happening, ask an admin to lower Hearth's engine slots or raise Ollama's "
        "OLLAMA_MAX_QUEUE."
    ) from last


def retry_busy_stream(
    start: Callable[[], Iterator[T]],
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay_s: float = DEFAULT_BASE_DELAY_S,
    *,
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    sleep: Callable[[float], object] = time.sleep,
    jitter: Callable[[], float] = random.random,
    cancel: threading.Event | None = None,
) -> Generator[T, None, None]:
    """Like retry_busy for a stream: only the call up to its first item is retried.

    Once an item came through, a later EngineBusy goes to the caller as it is: retrying then
    would repeat text the user has already seen.
    """

    def first() -> tuple[Iterator[T], list[T]]:
        stream = iter(start())
        for item in stream:
            return stream, [item]
        return stream, []

    stream, head = retry_busy(
        first,
        attempts,
        base_delay_s,
        max_delay_s=max_delay_s,
        sleep=sleep,
        jitter=jitter,
        cancel=cancel,
    )
    yield from head
    yield from stream
