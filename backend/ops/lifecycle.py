"""The serving process's life: its garbage collector once started; waiting for the signal to
stop, SIGTERM (systemd, docker, Kubernetes) or SIGINT (Ctrl+C)."""

from __future__ import annotations

import gc
import signal
import threading
from types import FrameType


def settle_garbage_collector() -> int:
    """Once the app is built and serving, keep its startup objects out of every later
    collection; returns how many objects were set aside.

    A full collection walks every tracked object with the GIL held, and nothing else in the
    process runs meanwhile: Gradio's built UI alone is ~190,000 objects, and the load bench saw
    pauses of 0.1-0.8 s. Objects that live as long as the process need never be walked
    (gc.freeze); they are still freed by reference counting. The thresholds stay Python's:
    raising the first one made each young collection longer (70-90 ms at 20,000).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


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
