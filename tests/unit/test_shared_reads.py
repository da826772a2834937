"""SharedReads (one read per key and interval for all callers) and where the chat path uses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend import shared_reads
from backend.admission import AdmissionSettings
from backend.auth import CLI
from backend.engines.embedded import BUNDLED_MODEL_NAME
from backend.services import Services
from backend.settings import Settings
from backend.shared_reads import MAX_KEYS, SharedReads


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_each_key_is_read_once_per_interval() -> None:
    clock, reads = Clock(), []
    shared: SharedReads[str, str] = SharedReads(1.0, clock)

    def read(key: str) -> str:
        reads.append(key)
        return f"{key}@{clock.now}"

    assert shared.get("a", lambda: read("a")) == "a@10.0"
    assert shared.get("b", lambda: read("b")) == "b@10.0"
    clock.now += 0.9
    assert shared.get("a", lambda: read("a")) == "a@10.0"
    clock.now += 0.2
    assert shared.get("a", lambda: read("a")) == "a@11.1"
    assert reads == ["a", "b", "a"]


def test_a_failed_read_keeps_nothing_and_forget_drops_everything() -> None:
    shared: SharedReads[str, int] = SharedReads(60.0, Clock())

    def fail() -> int:
        raise RuntimeError("engine down")

    with pytest.raises(RuntimeError):
        shared.get("a", fail)
    assert shared.get("a", lambda: 1) == 1
    assert shared.get("a", lambda: 2) == 1
    shared.forget()
    assert shared.get("a", lambda: 3) == 3


def test_callers_of_one_key_at_once_share_one_read_and_other_keys_do_not_wait() -> None:
    shared: SharedReads[str, str] = SharedReads(60.0)
    release, reads = threading.Event(), []

    def slow() -> str:
        reads.append("slow")
        release.wait(10)
        return "slow answer"

    answers: list[str] = []
    threads = [
        threading.Thread(target=lambda: answers.append(shared.get("slow", slow))) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    assert shared.get("other", lambda: "quick") == "quick"  # not behind the slow key
    release.set()
    for thread in threads:
        thread.join(10)
    assert answers == ["slow answer"] * 10 and reads == ["slow"]


def test_refresh_ahead_gives_the_old_answer_at_once_and_reads_once_behind_it() -> None:
    clock, reads, release = Clock(), [], threading.Event()
    shared: SharedReads[str, int] = SharedReads(3.0, clock, refresh_after_s=1.0)

    def read(value: int) -> int:
        reads.append(value)
        if value > 1:
            release.wait(10)
        return value

    assert shared.get("a", lambda: read(1)) == 1
    clock.now += 0.5
    assert shared.get("a", lambda: read(99)) == 1 and reads == [1]  # young: no read at all
    clock.now += 1.0
    assert shared.get("a", lambda: read(2)) == 1  # old enough: given, and read behind it
    assert shared.get("a", lambda: read(3)) == 1  # that read is under way: no second one
    release.set()
    for _ in range(200):
        if shared.get("a", lambda: read(4)) == 2:
            break
        threading.Event().wait(0.01)
    assert reads == [1, 2]
    clock.now += 3.5  # older than ttl_s: the caller reads, as without refresh-ahead
    assert shared.get("a", lambda: read(5)) == 5


def test_a_refresh_under_way_across_forget_is_not_kept() -> None:
    clock, release = Clock(), threading.Event()
    shared: SharedReads[str, str] = SharedReads(3.0, clock, refresh_after_s=1.0)
    shared.get("a", lambda: "old")
    clock.now += 1.5
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "read before the forget"

    assert shared.get("a", slow) == "old"
    assert started.wait(10)
    shared.forget()  # an admin's delete while the background read is on its way
    release.set()
    assert shared.get("a", lambda: "afresh") == "afresh"  # waits for the lock, then reads
    assert shared.get("a", lambda: "again") == "afresh"


def test_the_read_ahead_thread_is_a_daemon_and_ends_when_idle(monkeypatch) -> None:
    """An engine that never answers cannot hold up the process's exit; no thread is left
    behind by a SharedReads nobody asks."""
    monkeypatch.setattr(shared_reads, "REFRESHER_IDLE_S", 0.05)
    clock = Clock()
    shared: SharedReads[str, int] = SharedReads(3.0, clock, refresh_after_s=1.0)
    shared.get("a", lambda: 1)
    clock.now += 1.5
    seen: list[threading.Thread] = []
    shared.get("a", lambda: seen.append(threading.current_thread()) or 2)
    for _ in range(200):
        if seen and not seen[0].is_alive():
            break
        threading.Event().wait(0.01)
    assert seen and seen[0].daemon and not seen[0].is_alive()
    assert shared.get("a", lambda: 3) == 2
    clock.now += 1.5  # a later read-ahead starts the thread again
    shared.get("a", lambda: seen.append(threading.current_thread()) or 4)
    for _ in range(200):
        if shared.get("a", lambda: 5) == 4:
            break
        threading.Event().wait(0.01)
    assert len(seen) == 2 and shared.get("a", lambda: 6) == 4


@pytest.mark.parametrize("after", [-1.0, 3.0, 5.0])
def test_refresh_after_must_come_before_the_answer_ages_out(after: float) -> None:
    with pytest.raises(ValueError, match="refresh_after_s"):
        SharedReads(3.0, refresh_after_s=after)


def test_stale_keys_are_dropped_past_the_bound() -> None:
    clock = Clock()
    shared: SharedReads[int, int] = SharedReads(1.0, clock)
    for key in range(MAX_KEYS):
        shared.get(key, lambda key=key: key)
    clock.now += 5
    shared.get(-1, lambda: -1)
    assert len(shared._answers) == 1  # only the fresh answer is kept


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = Services.build(Settings(data_dir=tmp_path, engine="embedded"))
    try:
        yield built
    finally:
        built.close()


def test_a_burst_of_turns_shares_one_admission_decision_until_the_policy_changes(services):
    admin = services.users.add_user(CLI, "root", "root-pass-123", "admin")
    first = services.models.chat.chat_turn_decision(admin, BUNDLED_MODEL_NAME, 2048)
    assert first is not None  # nothing is loaded: admission judges the load
    assert services.models.chat.chat_turn_decision(admin, BUNDLED_MODEL_NAME, 2048) is first
    assert services.models.chat.chat_turn_decision(admin, BUNDLED_MODEL_NAME, 4096) is not first
    services.models.set_admission_settings(admin, AdmissionSettings(policy="strict"))
    after = services.models.chat.chat_turn_decision(admin, BUNDLED_MODEL_NAME, 2048)
    assert after is not first and after is not None
