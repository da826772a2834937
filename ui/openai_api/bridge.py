"""A blocking chat turn on its own thread, read from the event loop; a gone client stops it.

ChatService's turns are plain generators that block (in the fair line, in the engine). The turn
runs to its end on one thread of its own, whatever the reader does, so its finally blocks (free
the slot, save the reply and usage) always run there; the reader awaits its events through an
asyncio queue. Setting `cancel` is the page's Stop: the line lets go, the engine stops within a
token, and the turn ends as 'stopped'. `watch_disconnect` sets it when the HTTP client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.requests import Request

from backend.chat.fair_line_values import StopFlag

T = TypeVar("T")


@dataclass(frozen=True)
class _Failed:
    error: Exception


_END = object()


class TurnBridge(Generic[T]):
    """Runs `start(cancel)` on a daemon thread; iterate the instance (async) for its items."""

    def __init__(self, start: Callable[[threading.Event], Iterator[T]]) -> None:
        self.cancel = StopFlag()  # a turn waiting in the fair line leaves when it is set
        self._start = start
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._thread = threading.Thread(target=self._produce, name="hearth-api-turn", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._start(self.cancel):
                self._put(item)
        except Exception as exc:  # the reader raises it, on the event loop
            self._put(_Failed(exc))
        finally:
            self._put(_END)

    def _put(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]


async def watch_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client goes away (run as a task once the body has been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return
