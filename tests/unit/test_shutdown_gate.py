"""The shutdown gate: new turns refused once closed; replies in flight finish or are cut."""

from __future__ import annotations

import threading
import time

import pytest

from backend.chat.shutdown import SHUTTING_DOWN, ShutdownGate, ShuttingDown


def _reply(
    gate: ShutdownGate, ends: threading.Event | None = None
) -> tuple[threading.Thread, threading.Event]:
    """A reply running in a thread: it ends when `ends` is set or when its cancel is set."""
    cancel = gate.track(None)

    def run() -> None:
        while not cancel.is_set() and not (ends is not None and ends.is_set()):
            cancel.wait(0.01)
        gate.untrack(cancel)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, cancel


def test_an_open_gate_lets_turns_through():
    ShutdownGate().check()


def test_a_closed_gate_refuses_new_turns_with_the_sentence():
    gate = ShutdownGate()
    gate.close()
    with pytest.raises(ShuttingDown, match="shutting down; try again in a minute"):
        gate.check()
    assert SHUTTING_DOWN == "Hearth is shutting down; try again in a minute."


def test_a_reply_that_ends_within_the_grace_period_is_not_cut():
    gate = ShutdownGate()
    ends = threading.Event()
    thread, cancel = _reply(gate, ends)

    def end_once_draining() -> None:
        while not gate.closed:
            time.sleep(0.005)
        ends.set()

    threading.Thread(target=end_once_draining, daemon=True).start()
    report = gate.drain(grace_s=60)
    thread.join()
    assert (report.in_flight, report.finished, report.interrupted, report.unsaved) == (1, 1, 0, 0)
    assert not cancel.is_set() and not gate.interrupted(cancel)


def test_a_reply_still_running_after_the_grace_period_is_cut_and_marked():
    gate = ShutdownGate()
    thread, cancel = _reply(gate)
    report = gate.drain(grace_s=0)
    thread.join()
    assert (report.in_flight, report.finished, report.interrupted, report.unsaved) == (1, 0, 1, 0)
    assert cancel.is_set() and gate.interrupted(cancel)
    assert gate.running() == 0


def test_a_reply_reaching_the_engine_after_the_cut_is_cut_at_once():
    gate = ShutdownGate()
    gate.drain(grace_s=0)
    late = gate.track(None)
    assert late.is_set() and gate.interrupted(late)


def test_a_users_stop_is_not_an_interruption():
    gate = ShutdownGate()
    cancel = gate.track(threading.Event())
    cancel.set()  # Stop
    gate.untrack(cancel)
    assert not gate.interrupted(cancel)


def test_a_reply_that_is_never_saved_is_reported_unsaved():
    gate = ShutdownGate()
    gate.track(None)  # its thread never untracks (an engine that ignores cancel)
    report = gate.drain(grace_s=0, save_s=0.05)
    assert (report.interrupted, report.unsaved) == (0, 1)
    assert "1 not saved" in report.describe()
