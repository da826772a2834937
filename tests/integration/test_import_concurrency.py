"""A big import shares the database: it writes in batches, others' logins and writes go on
between them, and an import that fails part-way leaves nothing behind. Real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import pytest

from backend.auth import CLI, Authentication, UserAdmin
from backend.chat.conversations import MAX_IMPORT_MESSAGES, ConversationService
from backend.store.connections import BUSY_TIMEOUT_MS
from backend.store.database import IMPORT_BATCH_ROWS, ImportFailed, Store, StoreError
from tests.conftest import STAFF_PASSWORD
from tests.support.conversation_exports import export, turns


def runs(ids: list[int]) -> list[list[int]]:
    """Split sorted ids into runs of consecutive numbers."""
    found: list[list[int]] = []
    for value in ids:
        if found and value == found[-1][-1] + 1:
            found[-1].append(value)
        else:
            found.append([value])
    return found


class Alongside:
    """Repeat an operation in another thread until told to stop; keep every outcome."""

    def __init__(self, operation: Callable[[], object]) -> None:
        self.operation = operation
        self.results: list[object] = []
        self.errors: list[BaseException] = []
        self.started = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.results.append(self.operation())
            except BaseException as exc:  # every failure is a test failure, kept to report
                self.errors.append(exc)
            self.started.set()

    def __enter__(self) -> Alongside:
        self.thread.start()
        assert self.started.wait(30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(60)


def test_logins_and_writes_go_on_between_the_batches_of_a_big_import(store, alice):
    auth = Authentication(store)
    bob = UserAdmin(store).add_user(CLI, "bob", STAFF_PASSWORD, "staff")
    bobs_chat = store.create_conversation(bob.id, title="bob's own")
    history = ConversationService(store)
    raw = export(turns(MAX_IMPORT_MESSAGES))

    def bob_writes() -> int:
        return store.add_message(bob.id, bobs_chat.id, role="user", content="still here").id

    def bob_logs_in() -> bool:
        return auth.check_login("bob", STAFF_PASSWORD)

    with Alongside(bob_logs_in) as logins, Alongside(bob_writes) as writes:
        imported = history.import_json(alice, raw)
        logins_before = len(logins.results)
    assert logins.errors == [] and writes.errors == []  # no "database is locked", nothing else
    assert logins.results and all(ok is True for ok in logins.results)
    assert logins_before >= 1
    imported_ids = [m.id for m in store.messages(alice.id, imported.id)]
    assert len(imported_ids) == MAX_IMPORT_MESSAGES
    # Bob's rows landed between the import's batches, and each batch stayed whole.
    between = [i for i in writes.results if imported_ids[0] < i < imported_ids[-1]]
    assert between, "no other write got in while the import ran"
    pieces = runs(imported_ids)
    assert len(pieces) > 1
    assert all(len(piece) % IMPORT_BATCH_ROWS == 0 for piece in pieces)


def test_another_store_on_the_same_file_waits_instead_of_failing(store, alice, tmp_path):
    """Another process's writers meet SQLite's lock: they wait (busy_timeout), not fail."""
    other = Store(store.path)
    try:
        bob = other.create_user("bob", "staff", "hash")
        chat = other.create_conversation(bob.id, title="other store")
        with Alongside(
            lambda: other.add_message(bob.id, chat.id, role="user", content="x")
        ) as writes:
            ConversationService(store).import_json(alice, export(turns(MAX_IMPORT_MESSAGES)))
        assert writes.errors == []
        assert len(writes.results) >= 1
    finally:
        other.close()


def test_every_connection_waits_for_the_write_lock(store):
    timeouts: list[int] = []

    def read_timeout() -> None:
        timeouts.append(store._connections.get().execute("PRAGMA busy_timeout").fetchone()[0])

    threads = [threading.Thread(target=read_timeout) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read_timeout()
    assert timeouts == [BUSY_TIMEOUT_MS] * 4


@pytest.fixture
def failing_write(store: Store):
    """A real SQLite failure on one row (as a full disk or an I/O error would fail a batch)."""
    conn = sqlite3.connect(store.path)
    conn.execute(
        "CREATE TRIGGER fail_one_row BEFORE INSERT ON messages WHEN new.content = 'fail here'"
        " BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
    )
    conn.commit()
    conn.close()


@pytest.mark.usefixtures("failing_write")
def test_an_import_failing_part_way_leaves_nothing(store, alice):
    messages = turns(1_200)
    messages[1_100]["content"] = "fail here"  # in the third batch: two are committed by then
    with pytest.raises(ImportFailed) as failure:
        ConversationService(store).import_json(alice, export(messages))
    assert str(failure.value) == (
        "The import stopped after 1,000 of 1,200 messages (simulated write failure); "
        "nothing of it was kept."
    )
    assert store.count_conversations(alice.id) == 0
    assert store._one("SELECT count(*) FROM messages")[0] == 0
    assert store.search(alice.id, "m5") == []
    # The store still works for the next import.
    assert ConversationService(store).import_json(alice, export(turns(3))).message_count == 3


def test_a_nested_write_is_refused_not_deadlocked(store):
    with (
        store._connections.write(),
        pytest.raises(StoreError, match="cannot begin inside"),
        store._connections.write(),
    ):
        pass
