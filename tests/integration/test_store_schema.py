"""Schema, migrations and pragmas of the store file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from backend.store.database import Store, StoreError
from backend.store.migrations import MIGRATION_NAMES, MIGRATION_SET, migrate
from backend.store.records import CONVERSATION_MESSAGES_SQL, LIST_CONVERSATIONS_SQL, SEARCH_SQL


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _recorded(path: Path) -> list[str]:
    conn = _raw(path)
    rows = conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
        (MIGRATION_SET,),
    ).fetchall()
    conn.close()
    return [name for (name,) in rows]


def _first_version_db(path: Path) -> None:
    """A database as the first release left it: m001 only, with a user, a chat and two turns."""
    conn = _raw(path)
    migrate(conn, stop_before=MIGRATION_NAMES[1])
    t = "2025-01-01T00:00:00.000000+00:00"
    conn.execute("INSERT INTO users VALUES (1, 'alice', 'admin', 'hash', 0, ?)", (t,))
    conn.execute(
        "INSERT INTO conversations VALUES (1, 1, 'Old chat', 'qwen', '', '{\"num_ctx\": 2048}',"
        " ?, ?)",
        (t, t),
    )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, owner_id, role, content, created_at)"
        " VALUES (1, 1, 1, 'user', 'remember the lighthouse', ?),"
        " (2, 1, 1, 'assistant', 'the lighthouse is noted', ?)",
        (t, t),
    )
    conn.close()


def test_new_database_applies_every_migration_in_order(tmp_path: Path) -> None:
    with Store(tmp_path / "hearth.db") as store:
        assert store.schema_version == MIGRATION_NAMES
    assert _recorded(tmp_path / "hearth.db") == list(MIGRATION_NAMES)


def test_there_are_several_real_migrations() -> None:
    assert len(MIGRATION_NAMES) >= 3
    assert list(MIGRATION_NAMES) == sorted(MIGRATION_NAMES)


def test_store_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "hearth.db"
    Store(path).close()
    assert path.is_file()


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    with Store(path) as store:
        user = store.create_user("alice", "staff", "h")
    with Store(path) as store:
        assert store.schema_version == MIGRATION_NAMES
        assert store.list_users() == [user]
    assert _recorded(path) == list(MIGRATION_NAMES)


def test_first_version_database_upgrades_with_data_intact(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    _first_version_db(path)
    assert _recorded(path) == [MIGRATION_NAMES[0]]
    with Store(path) as store:
        assert store.schema_version == MIGRATION_NAMES
        user = store.get_user_by_name("alice")
        assert user is not None
        assert (user.role, user.password_hash, user.failed_logins, user.locked_until) == (
            "admin", "hash", 0, None
        )  # fmt: skip
        chat = store.get_conversation(1, 1)
        assert (chat.title, chat.options, chat.message_count) == ("Old chat", {"num_ctx": 2048}, 2)
        assert [m.content for m in store.messages(1, 1)] == [
            "remember the lighthouse", "the lighthouse is noted"
        ]  # fmt: skip


def test_upgrade_indexes_existing_messages_for_search(tmp_path: Path) -> None:
    _first_version_db(tmp_path / "hearth.db")
    with Store(tmp_path / "hearth.db") as store:
        assert [h.message_id for h in store.search(1, "lighthouse")] in ([1, 2], [2, 1])


def test_upgrade_adds_the_new_tables_and_columns(tmp_path: Path) -> None:
    _first_version_db(tmp_path / "hearth.db")
    with Store(tmp_path / "hearth.db") as store:
        locked = store.update_user(1, failed_logins=5, locked_until="2030-01-01T00:00:00Z")
        store.audit(actor="alice", action="upgrade")
        store.set_setting("k", "v")
        assert (locked.failed_logins, store.list_audit()[0].action, store.get_setting("k")) == (
            5, "upgrade", "v"
        )  # fmt: skip


def test_many_threads_opening_a_new_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _recorded(path) == list(MIGRATION_NAMES)


def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    Store(tmp_path / "hearth.db").close()
    conn = _raw(tmp_path / "hearth.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_foreign_keys_cascade_through_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "hearth.db") as store:
        owner = store.create_user("alice", "staff", "h").id
        chat = store.create_conversation(owner, title="t")
        store.add_message(owner, chat.id, role="user", content="x")
        store.delete_conversation(owner, chat.id)
    conn = _raw(tmp_path / "hearth.db")
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        (LIST_CONVERSATIONS_SQL, (1, 50, 0), "conversations_owner_updated"),
        (CONVERSATION_MESSAGES_SQL, (1, 1), "messages_conversation"),
    ],
    ids=["list", "open"],
)
def test_listing_and_opening_are_index_lookups(
    tmp_path: Path, sql: str, params: tuple, index: str
) -> None:
    Store(tmp_path / "hearth.db").close()
    conn = _raw(tmp_path / "hearth.db")
    plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    conn.close()
    assert f"INDEX {index}" in plan
    assert "SCAN" not in plan
    assert "TEMP B-TREE" not in plan


def test_search_starts_from_the_full_text_index(tmp_path: Path) -> None:
    Store(tmp_path / "hearth.db").close()
    conn = _raw(tmp_path / "hearth.db")
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {SEARCH_SQL}", ("x", 1, 1, 20))]
    conn.close()
    assert plan[0].startswith("SCAN messages_fts VIRTUAL TABLE")


def test_a_file_that_is_not_a_database_gives_a_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=f"Cannot open the database {path}: .*not a database"):
        Store(path)
