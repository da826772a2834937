"""Gradio's queue, woken by work instead of looking for it every millisecond.

Gradio's queue loop (`Queue.start_processing`) sleeps 1 ms and looks again whenever it has
nothing to start: no event waiting, no free worker, or none it may start yet. An idle Hearth
thus wakes its event loop a thousand times a second, 7% of a core doing nothing (measured with
psutil on an idle app), and under load the same wake-ups take turns on the GIL with the chats.

Here the loop's sleep "when free" waits until there is work instead: an event pushed, or a job
ended (a worker and a concurrency slot freed). Its progress loop, which looks every 10 ms for
progress to send, does the same while no job runs, and waits for a job to start. Each still
looks at least every IDLE_LOOK_S, so a way in that this misses costs at most that, never a lost
event. Installed once, before demo.queue(), by ui.gradio_trims.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from gradio import queueing

IDLE_LOOK_S = 0.5  # the longest the loop sleeps without being woken


class _UntilWork(float):
    """A sleep "when free": its type says to end it on work (IDLE_LOOK_S at most)."""


class _ProgressPause(float):
    """The progress loop's pause: this long while a job runs; until work while none does."""

    queue: queueing.Queue


_WORK: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
    weakref.WeakKeyDictionary()
)


def _work_event() -> asyncio.Event:
    loop = asyncio.get_running_loop()  # one per server: each Gradio app runs its own loop
    event = _WORK.get(loop)
    if event is None:
        event = _WORK[loop] = asyncio.Event()
    return event


def wake() -> None:
    """Tell this loop's queue there may be something to start."""
    _work_event().set()


def _jobs_run(queue: queueing.Queue) -> bool:
    return any(job is not None for job in queue.active_jobs)


async def _sleep(delay: float, result: Any = None) -> Any:
    # Both loops look at the queue right after a sleep, with no await between that look and
    # their next sleep: a wake-up can only come while they wait, so one waiter clearing the
    # event never hides work from the other.
    idle_progress = isinstance(delay, _ProgressPause) and not _jobs_run(delay.queue)
    if not (isinstance(delay, _UntilWork) or idle_progress):
        return await asyncio.sleep(float(delay), result)
    event = _work_event()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), IDLE_LOOK_S)
    event.clear()
    return result


class _QueueingAsyncio:
    """`asyncio` as gradio.queueing sees it: the module itself, but for the sleep above."""

    sleep = staticmethod(_sleep)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


class WakingQueue(queueing.Queue):
    """Gradio's Queue whose loop sleeps until work arrives (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleep_when_free = _UntilWork(self.sleep_when_free)
        pause = _ProgressPause(self.progress_update_sleep_when_free)
        pause.queue = self
        self.progress_update_sleep_when_free = pause

    async def push(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().push(*args, **kwargs)
        finally:
            wake()

    async def process_events(self, *args: Any, **kwargs: Any) -> Any:
        wake()  # a job runs: the progress loop looks every 10 ms again
        try:
            return await super().process_events(*args, **kwargs)
        finally:
            wake()  # a worker and a concurrency slot are free again


def install() -> None:
    """Make the next demo.queue() build a WakingQueue."""
    queueing.asyncio = _QueueingAsyncio()  # type: ignore[assignment]
    queueing.Queue = WakingQueue  # type: ignore[misc]
