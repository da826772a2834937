"""Value types and exceptions of the store, and the SQL column lists they are read from."""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.store.connections import StoreError
from backend.store.values import load_options


class ConversationNotFound(StoreError):
    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"Conversation {conversation_id} was not found.")
        self.conversation_id = conversation_id


class MessageNotFound(StoreError):
    def __init__(self, conversation_id: int, message_id: int) -> None:
        super().__init__(f"Message {message_id} was not found in conversation {conversation_id}.")
        self.message_id = message_id


class ImportFailed(StoreError):
    """A write failed part-way through an import; what it had written was deleted again."""

    def __init__(self, written: int, total: int, cause: Exception, *, discarded: bool) -> None:
        kept = (
            "nothing of it was kept"
            if discarded
            else "the partial copy could not be removed: delete that chat"
        )
        super().__init__(
            f"The import stopped after {written:,} of {total:,} messages ({cause}); {kept}."
        )
        self.written = written
        self.total = total


class UserExists(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"A user named {name!r} already exists.")
        self.name = name


class UserNotFound(StoreError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"User {user_id} was not found.")
        self.user_id = user_id


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    role: str
    password_hash: str
    disabled: bool
    created_at: str
    failed_logins: int
    locked_until: str | None


@dataclass(frozen=True)
class Conversation:
    id: int
    owner_id: int
    title: str
    model: str
    system_prompt: str
    options: dict = field(hash=False)
    created_at: str
    updated_at: str
    message_count: int = 0


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    model: str
    created_at: str
    status: str = "complete"
    error: str = ""
    ttft_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    message_id: int
    title: str
    role: str
    snippet: str  # the match wrapped in «» markers
    created_at: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: str


USER_COLUMNS = "id, name, role, password_hash, disabled, created_at, failed_logins, locked_until"
CONVERSATION_COLUMNS = (
    "c.id, c.owner_id, c.title, c.model, c.system_prompt, c.options_json, c.created_at,"
    " c.updated_at, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
)
MESSAGE_COLUMNS = (
    "m.id, m.conversation_id, m.role, m.content, m.model, m.created_at, m.status, m.error,"
    " m.ttft_ms, m.tokens_in, m.tokens_out, m.tokens_per_s"
)
INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, owner_id, role, content, model, created_at,"
    " status, error, ttft_ms, tokens_in, tokens_out, tokens_per_s)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# The read statements whose speed matters, shared with bench/store.py and the query-plan tests.
LIST_CONVERSATIONS_SQL = (
    f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.owner_id = ?"
    " ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?"
)  # params: owner_id, limit, offset
# One statement, so "not yours / missing" (no row) and "empty" (one all-NULL message row)
# come from the same snapshot.
CONVERSATION_MESSAGES_SQL = (
    f"SELECT {MESSAGE_COLUMNS} FROM conversations c"
    " LEFT JOIN messages m ON m.conversation_id = c.id AND m.owner_id = c.owner_id"
    " WHERE c.id = ? AND c.owner_id = ? ORDER BY m.id"
)  # params: conversation_id, owner_id
NEWEST_MESSAGES_SQL = (
    f"SELECT {MESSAGE_COLUMNS} FROM conversations c"
    " LEFT JOIN messages m ON m.conversation_id = c.id AND m.owner_id = c.owner_id"
    " WHERE c.id = ? AND c.owner_id = ? ORDER BY m.id DESC LIMIT ?"
)  # params: conversation_id, owner_id, limit; newest first
SEARCH_SQL = (
    "SELECT m.conversation_id, m.id, c.title, m.role,"
    " snippet(messages_fts, 0, '«', '»', '…', 12), m.created_at"
    " FROM messages_fts"
    " JOIN messages m ON m.id = messages_fts.rowid"
    " JOIN conversations c ON c.id = m.conversation_id"
    " WHERE messages_fts MATCH ? AND m.owner_id = ? AND c.owner_id = ?"
    " ORDER BY bm25(messages_fts, 1.0, 0.0), m.id DESC LIMIT ?"
)  # params: fts_query(owner_id, text), owner_id, owner_id, limit


def user_record(row: tuple) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])


def conversation_record(row: tuple) -> Conversation:
    options = load_options(row[5])
    return Conversation(row[0], row[1], row[2], row[3], row[4], options, row[6], row[7], row[8])
