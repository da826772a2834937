"""The shutdown gate: on SIGTERM no new turns, a grace period for replies in flight, then a cut.

ChatService asks the gate before a turn writes anything (closed: ShuttingDown) and registers
each running reply's cancel Event with it. drain() closes the gate, waits up to grace_s for the
running replies to end on their own, then sets the cancel Event of each one still running; the
engine stops at its next token and ChatService saves the partial reply with status
'interrupted' (it asks interrupted() which status a cancelled reply gets).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from backend.chat.validation import ChatInputError
from backend.units import counted

log = logging.getLogger(__name__)

SHUTTING_DOWN = "Hearth is shutting down; try again in a minute."
DEFAULT_SAVE_S = 5.0  # after the cut: time for the engines to stop and the replies to be saved
INTERRUPTED_NOTE = "Hearth was shut down before this reply was finished."


class ShuttingDown(ChatInputError):
    """A new turn while Hearth is shutting down."""

    def __init__(self) -> None:
        super().__init__(SHUTTING_DOWN)


@dataclass(frozen=True)
class DrainReport:
    in_flight: int  # replies running when the drain began
    finished: int  # of those, ended within the grace period
    interrupted: int  # cut at the end of the grace period
    unsaved: int  # still running when the drain gave up waiting (their rows are missing)

    def describe(self) -> str:
        text = (
            f"{counted(self.in_flight, 'reply', 'replies')} in flight: "
            f"{self.finished} finished, {self.interrupted} saved as interrupted"
        )
        return text + (f", {self.unsaved} not saved" if self.unsaved else "")


class ShutdownGate:
    """Thread-safe; one per process (Services owns it)."""

    def __init__(self) -> None:
        self._closed = threading.Event()
        self._changed = threading.Condition()
        self._running: set[threading.Event] = set()  # each running reply's cancel Event
        self._cut: set[threading.Event] = set()
        self._cutting = False

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def check(self) -> None:
        """Raise ShuttingDown once the gate is closed (before a turn writes anything)."""
        if self._closed.is_set():
            raise ShuttingDown()

    def track(self, cancel: threading.Event | None) -> threading.Event:
        """Register a reply about to run; returns its cancel Event (a new one for None).

        A reply that reaches the engine after the cut (it passed check() before the gate
        closed) is cut at once.
        """
        cancel = cancel if cancel is not None else threading.Event()
        with self._changed:
            self._running.add(cancel)
            if self._cutting:
                self._cut.add(cancel)
                cancel.set()
        return cancel

    def untrack(self, cancel: threading.Event) -> None:
        """The reply has ended and is saved (one whose save failed stays counted as unsaved)."""
        with self._changed:
            self._running.discard(cancel)
            self._changed.notify_all()

    def outcome(self, cancel: threading.Event, status: str, error: str) -> tuple[str, str]:
        """A reply's (status, error) to save: a reply stopped by the shutdown is 'interrupted'."""
        if status == "stopped" and self.interrupted(cancel):
            return "interrupted", INTERRUPTED_NOTE
        return status, error

    def interrupted(self, cancel: threading.Event) -> bool:
        """Whether this reply's cancel was set by the shutdown (not by the user's Stop)."""
        with self._changed:
            return cancel in self._cut

    def running(self) -> int:
        with self._changed:
            return len(self._running)

    def close(self) -> None:
        """Refuse new turns from now on."""
        self._closed.set()

    def interrupt_all(self) -> int:
        """Cut every running reply; returns how many."""
        with self._changed:
            self._cutting = True
            for cancel in self._running:
                self._cut.add(cancel)
                cancel.set()
            return len(self._running)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no reply runs, at most timeout_s; whether none does."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def drain(self, grace_s: float, save_s: float = DEFAULT_SAVE_S) -> DrainReport:
        """Close, let replies run up to grace_s, cut the rest and wait up to save_s for them."""
        self.close()
        in_flight = self.running()
        self.wait_idle(grace_s)
        cut = self.interrupt_all()
        self.wait_idle(save_s)
        unsaved = self.running()
        if unsaved:
            log.warning("%d replies were still running %.0f s after the cut", unsaved, save_s)
        return DrainReport(in_flight, in_flight - cut, cut - unsaved, unsaved)
