"""StreamGuard: stop a blocking HTTP stream at once when the user cancels or the server stalls.

A thread blocked reading a socket does not notice a threading.Event, and closing the socket
from another thread does not wake it on Linux; shutting the socket down does, and it tells the
server at once that nobody reads any more (so it stops generating).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

POLL_S = 0.05


class StreamGuard:
    """Watches one HTTP exchange from a helper thread; use as a context manager.

    Pass `trace` as the request's httpx "trace" extension: it hands the guard the connection's
    socket as soon as it is connected (before the request is sent), so a cancel while the
    server is still reading the prompt stops it too. The connection must be a new one (a
    client without keep-alive), or no connect event comes.
    """

    def __init__(self, cancel: threading.Event | None, *, stall_timeout_s: float) -> None:
        self._cancel = cancel
        self._stall_timeout_s = stall_timeout_s
        self._socket: socket.socket | None = None
        self._waiting_since: float | None = None
        self._streaming = False
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self.cancelled = False
        self.stalled = False

    def trace(self, event_name: str, info: dict[str, Any]) -> None:
        # TLS wraps the TCP socket in a new one: the last one connected is the one to shut.
        if event_name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            if stream is not None:
                self._socket = stream.get_extra_info("socket")

    def lines(self, source: Iterator[str]) -> Iterator[str]:
        """The response's lines, timing each wait so a stalled server can be cut off.

        The wait for the first line is the request's read timeout (a queued request may wait
        long for its first token); after it, a silence longer than stall_timeout_s is a stall.
        """
        while True:
            self._waiting_since = time.monotonic()
            try:
                line = next(source)
            except StopIteration:
                return
            finally:
                self._waiting_since = None
            self._streaming = True
            yield line

    def __enter__(self) -> StreamGuard:
        if self._cancel is not None or self._stall_timeout_s > 0:
            self._thread = threading.Thread(target=self._watch, name="stream-guard", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finished.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._finished.wait(POLL_S):
            if self._cancel is not None and self._cancel.is_set():
                self.cancelled = True
                self._shut()
                return
            waiting_since = self._waiting_since
            if (
                self._streaming
                and self._stall_timeout_s > 0
                and waiting_since is not None
                and time.monotonic() - waiting_since > self._stall_timeout_s
            ):
                self.stalled = True
                self._shut()
                return

    def _shut(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
