"""Waiting for the signal to stop: SIGTERM (systemd, docker, Kubernetes) or SIGINT (Ctrl+C)."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def wait_for_stop_signal() -> signal.Signals:
    """Block the main thread until SIGTERM or SIGINT arrives; return which.

    After the first signal a second SIGTERM is ignored (the drain is under way; SIGKILL ends it
    at once) and a second Ctrl+C raises KeyboardInterrupt as usual.
    """
    received: list[signal.Signals] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not received:
            received.append(signal.Signals(signum))
            signal.signal(signal.SIGINT, signal.default_int_handler)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(0.5):  # short waits: the handler runs between them on the main thread
        pass
    return received[0]
