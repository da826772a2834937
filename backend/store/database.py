"""SQLite store: users, conversations, messages, search, audit log, settings, limits, usage.

One file in WAL mode. Each thread gets its own connection (readers never wait for a writer);
every write is one `BEGIN IMMEDIATE` transaction committed, with synchronous=FULL, before the
method returns. Every conversation, message and search method takes the owner first and
scopes to it in the SQL: another user's conversation looks exactly like a missing one.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from backend.store.accounts import AccountTables
from backend.store.api_keys import ApiKeyNotFound, ApiKeyRecord, ApiKeyTables
from backend.store.connections import StoreError, ThreadConnections
from backend.store.limits import LimitRecord, LimitTables
from backend.store.migrations import applied_migrations, migrate
from backend.store.records import (
    CONVERSATION_COLUMNS,
    CONVERSATION_MESSAGES_SQL,
    INSERT_MESSAGE,
    LIST_CONVERSATIONS_SQL,
    NEWEST_MESSAGES_SQL,
    SEARCH_SQL,
    AuditEntry,
    Conversation,
    ConversationNotFound,
    ImportFailed,
    Message,
    MessageNotFound,
    SearchHit,
    UserExists,
    UserNotFound,
    UserRecord,
    conversation_record,
)
from backend.store.usage import UsageEntry, UsageRow, UsageTables, UsageTotals, add_usage
from backend.store.values import (
    DEFAULT_TITLE,
    MESSAGE_ROLES,
    MESSAGE_STATUSES,
    ROLES,
    check_choice,
    check_limit,
    check_number,
    dump_options,
    fts_query,
    inserted_id,
    message_row,
    now_iso,
    utc_iso,
)

# Rows per write transaction when importing: each batch holds the write lock for milliseconds.
IMPORT_BATCH_ROWS = 500

_log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TITLE",
    "MESSAGE_ROLES",
    "MESSAGE_STATUSES",
    "ROLES",
    "ApiKeyNotFound",
    "ApiKeyRecord",
    "AuditEntry",
    "Conversation",
    "ConversationNotFound",
    "ImportFailed",
    "LimitRecord",
    "Message",
    "MessageNotFound",
    "SearchHit",
    "Store",
    "StoreError",
    "UsageEntry",
    "UsageRow",
    "UsageTotals",
    "UserExists",
    "UserNotFound",
    "UserRecord",
]


class Store(AccountTables, ApiKeyTables, LimitTables, UsageTables):
    """The app's durable state in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        """Open (creating the file and its folder if needed) and migrate to the current schema."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = ThreadConnections(self.path)
        try:
            conn = self._connections.get()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"The database {self.path} cannot use WAL mode (got {mode!r}).")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            self._connections.close()
            raise StoreError(f"Cannot open the database {self.path}: {exc}.") from exc
        except BaseException:
            self._connections.close()
            raise

    def close(self) -> None:
        self._connections.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> tuple[str, ...]:
        """Names of the applied migrations, in order."""
        return applied_migrations(self._connections.get())

    # -- conversations ----------------------------------------------------------------------

    def create_conversation(
        self,
        owner_id: int,
        *,
        title: str,
        model: str = "",
        system_prompt: str = "",
        options: dict | None = None,
    ) -> Conversation:
        now = now_iso()
        options_json = dump_options(options or {})
        try:
            with self._connections.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO conversations (owner_id, title, model, system_prompt,"
                    " options_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (owner_id, _title(title), model, system_prompt, options_json, now, now),
                )
        except sqlite3.IntegrityError as exc:
            raise UserNotFound(owner_id) from exc
        return self.get_conversation(owner_id, inserted_id(cursor))

    def list_conversations(
        self, owner_id: int, *, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        """The owner's conversations, most recently updated first."""
        check_limit(limit, offset)
        rows = self._all(LIST_CONVERSATIONS_SQL, (owner_id, limit, offset))
        return [conversation_record(r) for r in rows]

    def count_conversations(self, owner_id: int) -> int:
        return self._count("SELECT count(*) FROM conversations WHERE owner_id = ?", (owner_id,))

    def get_conversation(self, owner_id: int, conversation_id: int) -> Conversation:
        row = self._one(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ? AND c.owner_id = ?",
            (conversation_id, owner_id),
        )
        if row is None:
            raise ConversationNotFound(conversation_id)
        return conversation_record(row)

    def rename_conversation(self, owner_id: int, conversation_id: int, title: str) -> Conversation:
        return self._change_conversation(owner_id, conversation_id, {"title": _title(title)})

    def update_conversation(
        self,
        owner_id: int,
        conversation_id: int,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        options: dict | None = None,
    ) -> Conversation:
        changes: dict[str, object] = {}
        if model is not None:
            changes["model"] = model
        if system_prompt is not None:
            changes["system_prompt"] = system_prompt
        if options is not None:
            changes["options_json"] = dump_options(options)
        return self._change_conversation(owner_id, conversation_id, changes)

    def _change_conversation(
        self, owner_id: int, conversation_id: int, changes: dict[str, object]
    ) -> Conversation:
        changes = {**changes, "updated_at": now_iso()}
        sets = ", ".join(f"{column} = ?" for column in changes)
        with self._connections.write() as conn:
            cursor = conn.execute(
                f"UPDATE conversations SET {sets} WHERE id = ? AND owner_id = ?",
                (*changes.values(), conversation_id, owner_id),
            )
            if cursor.rowcount == 0:
                raise ConversationNotFound(conversation_id)
        return self.get_conversation(owner_id, conversation_id)

    def delete_conversation(self, owner_id: int, conversation_id: int) -> None:
        with self._connections.write() as conn:
            cursor = conn.execute(
                "DELETE FROM conversations WHERE id = ? AND owner_id = ?",
                (conversation_id, owner_id),
            )
            if cursor.rowcount == 0:
                raise ConversationNotFound(conversation_id)

    # -- messages ---------------------------------------------------------------------------

    def messages(
        self, owner_id: int, conversation_id: int, *, newest: int | None = None
    ) -> list[Message]:
        """The conversation's messages (only the newest `newest` of them if given), oldest first."""
        if newest is None:
            rows = self._all(CONVERSATION_MESSAGES_SQL, (conversation_id, owner_id))
        else:
            check_limit(newest, 0)
            rows = self._all(NEWEST_MESSAGES_SQL, (conversation_id, owner_id, newest))[::-1]
        if not rows:
            raise ConversationNotFound(conversation_id)
        return [Message(*row) for row in rows if row[0] is not None]

    def add_message(
        self,
        owner_id: int,
        conversation_id: int,
        *,
        role: str,
        content: str,
        model: str = "",
        status: str = "complete",
        error: str = "",
        ttft_ms: float | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        tokens_per_s: float | None = None,
        usage: UsageEntry | None = None,
    ) -> Message:
        """Append a message and bump the conversation's updated_at; committed on return.

        `usage`, given for a turn's reply, is added to the usage table in the same transaction.
        """
        check_choice("role", role, MESSAGE_ROLES)
        check_choice("status", status, MESSAGE_STATUSES)
        if not isinstance(content, str):
            raise ValueError(f"content must be text, got {content!r}.")
        for name, value in (
            ("ttft_ms", ttft_ms),
            ("tokens_in", tokens_in),
            ("tokens_out", tokens_out),
            ("tokens_per_s", tokens_per_s),
        ):
            check_number(name, value)
        now = now_iso()
        with self._connections.write() as conn:
            bumped = conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ? AND owner_id = ?",
                (now, conversation_id, owner_id),
            )
            if bumped.rowcount == 0:
                raise ConversationNotFound(conversation_id)
            cursor = conn.execute(
                INSERT_MESSAGE,
                (conversation_id, owner_id, role, content, model, now, status, error,
                 ttft_ms, tokens_in, tokens_out, tokens_per_s),
            )  # fmt: skip
            if usage is not None:
                add_usage(conn, owner_id, usage)
        return Message(
            inserted_id(cursor), conversation_id, role, content, model, now, status, error,
            ttft_ms, tokens_in, tokens_out, tokens_per_s,
        )  # fmt: skip

    def delete_messages_from(self, owner_id: int, conversation_id: int, message_id: int) -> int:
        """Delete this message and every later one in its conversation; return how many."""
        with self._connections.write() as conn:
            bumped = conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ? AND owner_id = ?",
                (now_iso(), conversation_id, owner_id),
            )
            if bumped.rowcount == 0:
                raise ConversationNotFound(conversation_id)
            found = conn.execute(
                "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ? AND owner_id = ?",
                (message_id, conversation_id, owner_id),
            ).fetchone()
            if found is None:
                raise MessageNotFound(conversation_id, message_id)
            cursor = conn.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND owner_id = ? AND id >= ?",
                (conversation_id, owner_id, message_id),
            )
        return cursor.rowcount

    def search(self, owner_id: int, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Full-text search over the owner's messages, best match first.

        The query is taken as plain words (operators and quotes are ignored); the last word
        also matches as a prefix, so results appear while the user is still typing.
        """
        check_limit(limit, 0)
        match = fts_query(owner_id, query)
        if match is None:
            return []
        rows = self._all(SEARCH_SQL, (match, owner_id, owner_id, limit))
        return [SearchHit(*row) for row in rows]

    # -- import -----------------------------------------------------------------------------

    def import_conversation(
        self,
        owner_id: int,
        *,
        title: str,
        model: str,
        system_prompt: str,
        options: dict,
        messages: list[dict],
        created_at: str | None = None,
        batch_rows: int = IMPORT_BATCH_ROWS,
    ) -> Conversation:
        """Create a conversation with all its messages; all or nothing.

        Every row is checked before the first write. The rows then go in batches of
        batch_rows, each its own short transaction, so other writers (a login, a chat turn)
        wait milliseconds rather than the whole import; if any batch fails, the conversation
        and what was written of it are deleted before the error is raised.
        """
        check_limit(batch_rows, 0)
        now = now_iso()
        started = utc_iso(created_at) if created_at else now
        options_json = dump_options(options)
        rows = [message_row(owner_id, i, m, started) for i, m in enumerate(messages)]
        try:
            with self._connections.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO conversations (owner_id, title, model, system_prompt,"
                    " options_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (owner_id, _title(title), model, system_prompt, options_json, started, now),
                )
        except sqlite3.IntegrityError as exc:
            raise UserNotFound(owner_id) from exc
        conversation_id = inserted_id(cursor)
        assert conversation_id is not None  # an INSERT that succeeded has a rowid
        written = 0
        try:
            for start in range(0, len(rows), batch_rows):
                batch = rows[start : start + batch_rows]
                with self._connections.write() as conn:
                    conn.executemany(INSERT_MESSAGE, [(conversation_id, *row) for row in batch])
                written += len(batch)
        except BaseException as exc:
            discarded = self._discard_import(owner_id, conversation_id)
            if isinstance(exc, sqlite3.Error | StoreError):  # StoreError: the lock wait ran out
                raise ImportFailed(written, len(rows), exc, discarded=discarded) from exc
            raise
        return self.get_conversation(owner_id, conversation_id)

    def _discard_import(self, owner_id: int, conversation_id: int) -> bool:
        """Delete a conversation whose import failed (its messages go with it); True if done."""
        try:
            with self._connections.write() as conn:
                conn.execute(
                    "DELETE FROM conversations WHERE id = ? AND owner_id = ?",
                    (conversation_id, owner_id),
                )
        except (sqlite3.Error, StoreError):
            _log.exception("Cannot delete conversation %s after its import failed", conversation_id)
            return False
        return True


def _title(title: str) -> str:
    return title.strip() or DEFAULT_TITLE
