"""Migration m006: replies may be stored 'interrupted'; an older database keeps its messages,
their ids and its full-text index; any other status is still refused by the schema itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backend.store.database import Store
from backend.store.migrations import MIGRATION_NAMES, migrate

M006 = "m007_interrupted_status_ready_probe"


def _database_before_m006(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, stop_before=M006)
    conn.execute("INSERT INTO users (id, name, role, password_hash, created_at)"
                 " VALUES (1, 'alice', 'staff', 'h', 't')")  # fmt: skip
    conn.execute("INSERT INTO conversations (id, owner_id, title, created_at, updated_at)"
                 " VALUES (1, 1, 'old chat', 't', 't')")  # fmt: skip
    conn.execute(
        "INSERT INTO messages (id, conversation_id, owner_id, role, content, created_at, status)"
        " VALUES (40, 1, 1, 'user', 'where is the lighthouse', 't', 'complete'),"
        " (41, 1, 1, 'assistant', 'by the harbour', 't', 'stopped')"
    )
    conn.close()


def test_an_older_database_upgrades_with_its_messages_ids_and_search(tmp_path: Path):
    path = tmp_path / "hearth.db"
    _database_before_m006(path)
    with Store(path) as store:
        assert M006 in store.schema_version and store.schema_version == MIGRATION_NAMES
        old = store.messages(1, 1)
        assert [(m.id, m.status) for m in old] == [(40, "complete"), (41, "stopped")]
        new = store.add_message(1, 1, role="assistant", content="half a lighthouse",
                                status="interrupted", error="cut")  # fmt: skip
        assert store.messages(1, 1)[-1] == new and new.id == 42
        hits = store.search(1, "lighthouse")
        assert sorted(h.message_id for h in hits) == [40, 42]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE tbl_name = 'messages'"
        " AND type IN ('index', 'trigger') ORDER BY name"
    )
    assert [name for (name,) in rows] == [
        "messages_conversation",
        "messages_fts_delete",
        "messages_fts_insert",
        "messages_fts_update",
    ]
    conn.close()


def test_the_schema_still_refuses_any_other_status(store: Store, owner: int):
    chat = store.create_conversation(owner, title="t")
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute(
            "INSERT INTO messages (conversation_id, owner_id, role, content, created_at, status)"
            " VALUES (?, ?, 'assistant', 'x', 't', 'paused')",
            (chat.id, owner),
        )
    conn.close()
    with pytest.raises(ValueError, match="status"):
        store.add_message(owner, chat.id, role="assistant", content="x", status="paused")
