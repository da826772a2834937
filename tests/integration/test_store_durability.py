"""Acknowledged writes survive threads racing each other and a process killed mid-write."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from backend.store.database import Store

# Subprocesses or llama.cpp: out of the fast loop (CONTRIBUTING.md).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
THREADS = 20
TURNS_PER_THREAD = 10
KILLS = 5


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        return result
    finally:
        conn.close()


def _stored_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM messages")}
    finally:
        conn.close()


def test_twenty_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    store = Store(path)
    owners = [store.create_user(f"user{i}", "staff", "h").id for i in range(THREADS)]
    own_chats = [store.create_conversation(o, title=f"chat {o}").id for o in owners]
    shared = store.create_conversation(owners[0], title="shared").id
    acknowledged: list[list[int]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def write_turns(i: int) -> None:
        try:
            start.wait()
            for turn in range(TURNS_PER_THREAD):
                for role in ("user", "assistant"):
                    text = f"thread {i} turn {turn} {role}"
                    m = store.add_message(owners[i], own_chats[i], role=role, content=text)
                    acknowledged[i].append(m.id)
                m = store.add_message(owners[0], shared, role="user", content=f"shared {i}")
                acknowledged[i].append(m.id)
                store.list_conversations(owners[i])  # readers run beside the writers
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write_turns, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    assert errors == []
    every = [message_id for ids in acknowledged for message_id in ids]
    assert len(every) == len(set(every)) == THREADS * TURNS_PER_THREAD * 3
    assert _stored_ids(path) == set(every)
    assert _integrity(path) == "ok"
    with Store(path) as reopened:
        for i in range(THREADS):
            contents = [m.content for m in reopened.messages(owners[i], own_chats[i])]
            assert len(contents) == TURNS_PER_THREAD * 2
            assert contents[0] == f"thread {i} turn 0 user"
        assert len(reopened.messages(owners[0], shared)) == THREADS * TURNS_PER_THREAD


def _run_writer_and_kill(path: Path, lines_before_kill: int) -> list[int]:
    """Start the writer, read its acknowledged ids, SIGKILL it mid-stream; return the ids."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_writer", str(path), "alice"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[int] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            printed.append(int(line))
            if len(printed) >= lines_before_kill:
                break
        child.send_signal(signal.SIGKILL)  # while it is busy writing the next messages
        # Ids printed after our last read but before the kill were acknowledged too.
        rest, errors = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, errors
    printed.extend(int(line) for line in rest.split("\n")[:-1])  # a cut-off last line is unsure
    return printed


def test_acknowledged_messages_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    rng = random.Random()
    acknowledged: list[int] = []
    for _ in range(KILLS):
        acknowledged += _run_writer_and_kill(path, rng.randint(1, 60))
        assert _integrity(path) == "ok"
        assert set(acknowledged) <= _stored_ids(path)
    assert len(acknowledged) >= KILLS
    with Store(path) as store:  # and the store opens and works after every crash
        user = store.get_user_by_name("alice")
        assert user is not None
        assert store.count_conversations(user.id) == KILLS
        assert len(store.search(user.id, "turn")) > 0
