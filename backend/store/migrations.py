"""Schema of the SQLite store: ordered, named migrations recorded by sqlite-utils."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "hearth"

# Core tables. messages.owner_id repeats the conversation's owner (kept equal by the composite
# foreign key) so that every message query and the full-text index can scope to the owner
# without a join.
_M001_CORE = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at TEXT NOT NULL
);
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    system_prompt TEXT NOT NULL DEFAULT '',
    options_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (id, owner_id)
);
CREATE INDEX conversations_owner_updated ON conversations (owner_id, updated_at DESC, id DESC);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'stopped', 'error')),
    error TEXT NOT NULL DEFAULT '',
    ttft_ms REAL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    tokens_per_s REAL,
    FOREIGN KEY (conversation_id, owner_id)
        REFERENCES conversations (id, owner_id) ON DELETE CASCADE
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
"""

# Full-text index over message content, external content (the text lives once, in messages).
# owner_id is indexed as a token so a search intersects posting lists instead of ranking
# every user's matches and filtering afterwards.
_M002_SEARCH = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, owner_id,
    content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content, owner_id)
    VALUES (new.id, new.content, new.owner_id);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, owner_id)
    VALUES ('delete', old.id, old.content, old.owner_id);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, owner_id ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, owner_id)
    VALUES ('delete', old.id, old.content, old.owner_id);
    INSERT INTO messages_fts (rowid, content, owner_id)
    VALUES (new.id, new.content, new.owner_id);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
"""

_M003_ACCOUNTS_AUDIT_SETTINGS = """
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TEXT;
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT 'ok',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_at ON audit (at);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Sessions: ending a user's sessions advances the one-row clock and stamps the user with it; a
# login stamped with the clock value read before it began stays valid while the user's stamp is
# not newer (backend.auth). Refusals were once stored as 'denied' by the models service;
# the audit vocabulary has one word for them.
_M004_SESSIONS_REFUSED_OUTCOME = """
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
CREATE TABLE session_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO session_clock (id, epoch) VALUES (1, 0);
UPDATE audit SET outcome = 'refused' WHERE outcome = 'denied';
"""

# Limits and quotas an admin sets per role or per user (backend.chat.limits). A NULL column is
# "not set": a user row's falls back to the role's, a role row's means no limit.
_M005_LIMITS = """
CREATE TABLE limits (
    id INTEGER PRIMARY KEY,
    role TEXT UNIQUE CHECK (role IN ('admin', 'staff')),
    user_id INTEGER UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    turns_in_flight INTEGER CHECK (turns_in_flight >= 0),
    requests_per_minute INTEGER CHECK (requests_per_minute >= 0),
    reply_tokens_per_day INTEGER CHECK (reply_tokens_per_day >= 0),
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    CHECK ((role IS NULL) <> (user_id IS NULL))
);
"""

# Usage, one row per UTC day, user, model and source, added to as each turn ends (in the reply's
# own transaction). Clustered by day, so the admin's views over a range of days read one
# contiguous range; (user_id, day) serves a user's own view and the daily quota check.
_M006_USAGE_DAILY = """
CREATE TABLE usage_daily (
    day TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('page', 'api')),
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    reply_tokens INTEGER NOT NULL DEFAULT 0,
    engine_ms REAL NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    stopped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_id, model, source)
) WITHOUT ROWID;
CREATE INDEX usage_daily_user_day ON usage_daily (user_id, day);
"""

# A reply cut short by a shutdown is kept with status 'interrupted'. SQLite cannot change a
# CHECK constraint in place, so messages is rebuilt under the same name (rows, ids, indexes and
# triggers as they were; the full-text index is keyed by id and stays valid). The table's own
# SQL is edited rather than restated, so columns that earlier steps added are kept. The probe
# row is what /readyz writes to prove the database takes writes.
_M007_OLD_STATUS_CHECK = "CHECK (status IN ('complete', 'stopped', 'error'))"
_M007_NEW_STATUS_CHECK = "CHECK (status IN ('complete', 'stopped', 'error', 'interrupted'))"
_M007_READY_PROBE = """
CREATE TABLE ready_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
)
"""


def _m007_interrupted_status_ready_probe(db: Database) -> None:
    conn = db.conn
    (table_sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
    ).fetchone()
    if _M007_OLD_STATUS_CHECK not in table_sql:
        raise sqlite3.DatabaseError(f"messages has an unexpected status check: {table_sql}")
    dependents = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'messages'"
            " AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY rowid"
        )
    ]
    rebuilt = table_sql.replace(_M007_OLD_STATUS_CHECK, _M007_NEW_STATUS_CHECK).replace(
        "CREATE TABLE messages", "CREATE TABLE messages_m007", 1
    )
    # execute(), not executescript(): the latter would commit the migration's transaction.
    conn.execute(rebuilt)
    conn.execute("INSERT INTO messages_m007 SELECT * FROM messages")
    conn.execute("DROP TABLE messages")  # drops its indexes and triggers (recreated below)
    conn.execute("ALTER TABLE messages_m007 RENAME TO messages")
    for sql in dependents:
        conn.execute(sql)
    conn.execute(_M007_READY_PROBE)


# API keys (backend.auth.api_keys): the secret is shown once and never stored; `prefix` is the
# public part that finds the row, `secret_hash` the SHA-256 of the whole key (a 256-bit random
# token needs no slow hash). Revoking stamps revoked_at; the row stays for the audit trail.
_M008_API_KEYS = """
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_keys_user ON api_keys (user_id, id);
"""


_STEPS: tuple[tuple[str, str | Callable[[Database], None]], ...] = (
    ("m001_core_tables", _M001_CORE),
    ("m002_message_search", _M002_SEARCH),
    ("m003_accounts_audit_settings", _M003_ACCOUNTS_AUDIT_SETTINGS),
    ("m004_sessions_refused_outcome", _M004_SESSIONS_REFUSED_OUTCOME),
    ("m005_limits", _M005_LIMITS),
    ("m006_usage_daily", _M006_USAGE_DAILY),
    ("m007_interrupted_status_ready_probe", _m007_interrupted_status_ready_probe),
    ("m008_api_keys", _M008_API_KEYS),
)
MIGRATION_NAMES: tuple[str, ...] = tuple(name for name, _ in _STEPS)


def hearth_migrations() -> Migrations:
    """A fresh Migrations set holding every schema step, in order."""
    migrations = Migrations(MIGRATION_SET)
    for name, step in _STEPS:
        migrations(name=name)(_step(step) if isinstance(step, str) else step)
    return migrations


def _step(sql: str):
    def apply(db: Database) -> None:
        db.executescript(sql)

    return apply


def migrate(conn: sqlite3.Connection, *, stop_before: str | None = None) -> tuple[str, ...]:
    """Apply pending migrations in one write transaction; return the applied names in order.

    The whole run holds the write lock, so two processes opening a new file at once cannot
    both apply the same step. `stop_before` exists for tests of the upgrade path.
    """
    db = Database(conn, recursive_triggers=False, execute_plugins=False)
    migrations = hearth_migrations()
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrations.apply(db, stop_before=stop_before)
        applied = tuple(m.name for m in migrations.applied(db))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied


def applied_migrations(conn: sqlite3.Connection) -> tuple[str, ...]:
    """Names of the migrations recorded in this database, in the order they were applied."""
    db = Database(conn, recursive_triggers=False, execute_plugins=False)
    return tuple(m.name for m in hearth_migrations().applied(db))
