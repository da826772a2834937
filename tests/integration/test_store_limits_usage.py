"""Migrations m005 (limits) and m006 (usage_daily): the upgrade, the rules, the query plans."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backend.store.database import Store, UsageEntry
from backend.store.migrations import MIGRATION_NAMES, migrate

T = "2025-01-01T00:00:00.000000+00:00"


def _database_before_limits(path: Path) -> None:
    """A database as the release before limits left it (m001-m004), with a user and a turn."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, stop_before="m005_limits")
    conn.execute("INSERT INTO users (id, name, role, password_hash, created_at)"
                 " VALUES (1, 'alice', 'staff', 'hash', ?)", (T,))  # fmt: skip
    conn.execute("INSERT INTO conversations VALUES (1, 1, 'Old chat', 'm', '', '{}', ?, ?)", (T, T))
    conn.execute("INSERT INTO messages (id, conversation_id, owner_id, role, content, created_at)"
                 " VALUES (1, 1, 1, 'user', 'hello', ?)", (T,))  # fmt: skip
    conn.close()


def test_the_limits_and_usage_migrations_come_in_order_after_sessions():
    start = MIGRATION_NAMES.index("m004_sessions_refused_outcome")
    assert MIGRATION_NAMES[start + 1 : start + 3] == ("m005_limits", "m006_usage_daily")


def test_a_database_from_before_limits_upgrades_with_its_data(tmp_path):
    path = tmp_path / "hearth.db"
    _database_before_limits(path)
    with Store(path) as store:
        assert store.schema_version == MIGRATION_NAMES
        assert [m.content for m in store.messages(1, 1)] == ["hello"]
        assert store.list_limits() == []
        assert store.usage_by_day("2025-01-01", "2025-12-31") == []
        store.add_message(1, 1, role="assistant", content="hi",
                          usage=UsageEntry("2025-01-01", "m", "page", 2, 1, 5.0))  # fmt: skip
        assert store.reply_tokens_on(1, "2025-01-01") == 1


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO limits (role, user_id, updated_at, updated_by) VALUES ('staff', 1, 't', 'x')",
        "INSERT INTO limits (updated_at, updated_by) VALUES ('t', 'x')",
        "INSERT INTO limits (role, updated_at, updated_by) VALUES ('owner', 't', 'x')",
        "INSERT INTO limits (role, turns_in_flight, updated_at, updated_by)"
        " VALUES ('staff', -1, 't', 'x')",
        "INSERT INTO usage_daily (day, user_id, model, source)"
        " VALUES ('2025-01-01', 1, 'm', 'cli')",
    ],
)
def test_the_schema_refuses_rows_that_break_its_rules(tmp_path, sql):
    with Store(tmp_path / "hearth.db") as store:
        store.create_user("alice", "staff", "h")
    conn = sqlite3.connect(tmp_path / "hearth.db")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)
    conn.close()


def test_a_failed_reply_write_leaves_no_usage_behind(store, owner):
    conversation = store.create_conversation(owner, title="t")
    with pytest.raises(ValueError, match="source must be one of"):
        store.add_message(owner, conversation.id, role="assistant", content="x",
                          usage=UsageEntry("2025-01-01", "m", "cli", 1, 1))  # fmt: skip
    assert store.messages(owner, conversation.id) == []  # the usage failed: so did the reply
    assert store.usage_by_day("2025-01-01", "2025-01-01") == []


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("SELECT day, sum(requests) FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY day",
         "PRIMARY KEY"),
        ("SELECT sum(reply_tokens) FROM usage_daily WHERE user_id = ? AND day = ?",
         "PRIMARY KEY (day=? AND user_id=?)"),
        ("SELECT day, sum(requests) FROM usage_daily WHERE day BETWEEN ? AND ? AND user_id = ?"
         " GROUP BY day", "usage_daily_user_day"),
    ],
)  # fmt: skip
def test_usage_reads_use_an_index_not_a_scan(store, query, index):
    conn = sqlite3.connect(store.path)
    rows = conn.execute(f"EXPLAIN QUERY PLAN {query}", ("2025-01-01",) * query.count("?"))
    plan = " ".join(row[-1] for row in rows)
    conn.close()
    assert index in plan and "SCAN" not in plan, plan
