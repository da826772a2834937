"""Conversations and messages in the store, against a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.store.database import (
    Conversation,
    ConversationNotFound,
    MessageNotFound,
    Store,
    UserNotFound,
)


@pytest.fixture
def chat(store: Store, owner: int) -> Conversation:
    return store.create_conversation(owner, title="Trip", model="llama3.2:1b")


def test_create_conversation_returns_what_was_stored(store: Store, owner: int) -> None:
    created = store.create_conversation(
        owner, title="Plans", model="qwen", system_prompt="Be brief.", options={"num_ctx": 4096}
    )
    assert store.get_conversation(owner, created.id) == created
    assert (created.title, created.model, created.system_prompt) == ("Plans", "qwen", "Be brief.")
    assert created.options == {"num_ctx": 4096}
    assert created.message_count == 0
    assert created.created_at == created.updated_at


@pytest.mark.parametrize("title", ["", "   "])
def test_empty_title_becomes_new_chat(store: Store, owner: int, title: str) -> None:
    assert store.create_conversation(owner, title=title).title == "New chat"


def test_create_conversation_for_missing_user_raises(store: Store) -> None:
    with pytest.raises(UserNotFound, match="User 77"):
        store.create_conversation(77, title="x")


def test_get_missing_conversation_names_the_id(store: Store, owner: int) -> None:
    with pytest.raises(ConversationNotFound, match=r"^Conversation 123 was not found\.$"):
        store.get_conversation(owner, 123)


def test_list_conversations_newest_updated_first(store: Store, owner: int) -> None:
    first = store.create_conversation(owner, title="first")
    second = store.create_conversation(owner, title="second")
    store.add_message(owner, first.id, role="user", content="bump")
    assert [c.title for c in store.list_conversations(owner)] == ["first", "second"]
    assert second.id > first.id


def test_list_conversations_paginates(store: Store, owner: int) -> None:
    for i in range(5):
        store.create_conversation(owner, title=f"c{i}")
    page1 = store.list_conversations(owner, limit=2)
    page2 = store.list_conversations(owner, limit=2, offset=2)
    page3 = store.list_conversations(owner, limit=2, offset=4)
    titles = [c.title for c in page1 + page2 + page3]
    assert titles == ["c4", "c3", "c2", "c1", "c0"]


def test_list_conversations_counts_messages(store: Store, owner: int, chat: Conversation) -> None:
    for text in ("a", "b", "c"):
        store.add_message(owner, chat.id, role="user", content=text)
    assert store.list_conversations(owner)[0].message_count == 3


def test_list_conversations_rejects_zero_limit(store: Store, owner: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.list_conversations(owner, limit=0)


def test_count_conversations(store: Store, owner: int) -> None:
    for i in range(3):
        store.create_conversation(owner, title=f"c{i}")
    assert store.count_conversations(owner) == 3


def test_rename_conversation(store: Store, owner: int, chat: Conversation) -> None:
    renamed = store.rename_conversation(owner, chat.id, "  Rome trip ")
    assert renamed.title == "Rome trip"
    assert store.get_conversation(owner, chat.id).title == "Rome trip"
    assert renamed.updated_at >= chat.updated_at


def test_rename_to_blank_gives_new_chat(store: Store, owner: int, chat: Conversation) -> None:
    assert store.rename_conversation(owner, chat.id, "").title == "New chat"


def test_update_conversation_changes_given_fields_only(
    store: Store, owner: int, chat: Conversation
) -> None:
    updated = store.update_conversation(owner, chat.id, options={"temperature": 0.2})
    assert updated.options == {"temperature": 0.2}
    assert (updated.model, updated.title) == ("llama3.2:1b", "Trip")
    updated = store.update_conversation(owner, chat.id, model="qwen", system_prompt="Terse.")
    assert (updated.model, updated.system_prompt) == ("qwen", "Terse.")
    assert updated.options == {"temperature": 0.2}


def test_update_conversation_rejects_non_json_options(
    store: Store, owner: int, chat: Conversation
) -> None:
    with pytest.raises(ValueError, match="JSON"):
        store.update_conversation(owner, chat.id, options={"f": {1, 2}})
    assert store.get_conversation(owner, chat.id).options == {}


def test_delete_conversation_removes_it_and_its_messages(
    store: Store, owner: int, chat: Conversation
) -> None:
    store.add_message(owner, chat.id, role="user", content="hello")
    store.delete_conversation(owner, chat.id)
    with pytest.raises(ConversationNotFound):
        store.get_conversation(owner, chat.id)
    with pytest.raises(ConversationNotFound):
        store.messages(owner, chat.id)
    assert store.count_conversations(owner) == 0


def test_delete_missing_conversation_raises(store: Store, owner: int) -> None:
    with pytest.raises(ConversationNotFound, match="Conversation 5"):
        store.delete_conversation(owner, 5)


def test_add_message_returns_the_stored_message(
    store: Store, owner: int, chat: Conversation
) -> None:
    message = store.add_message(
        owner, chat.id, role="assistant", content="Paris.", model="qwen", status="stopped",
        ttft_ms=41.5, tokens_in=12, tokens_out=3, tokens_per_s=38.2,
    )  # fmt: skip
    assert store.messages(owner, chat.id) == [message]
    assert (message.status, message.ttft_ms, message.tokens_per_s) == ("stopped", 41.5, 38.2)


def test_add_message_keeps_error_text(store: Store, owner: int, chat: Conversation) -> None:
    store.add_message(owner, chat.id, role="assistant", content="Par", status="error",
                      error="model crashed")  # fmt: skip
    [message] = store.messages(owner, chat.id)
    assert (message.content, message.status, message.error) == ("Par", "error", "model crashed")


def test_add_message_bumps_updated_at(store: Store, owner: int, chat: Conversation) -> None:
    message = store.add_message(owner, chat.id, role="user", content="hi")
    assert store.get_conversation(owner, chat.id).updated_at == message.created_at
    assert message.created_at >= chat.updated_at


@pytest.mark.parametrize(
    ("field", "value"), [("role", "robot"), ("status", "done")]
)  # fmt: skip
def test_add_message_rejects_unknown_role_or_status(
    store: Store, owner: int, chat: Conversation, field: str, value: str
) -> None:
    kwargs = {"role": "user", "content": "x", field: value}
    with pytest.raises(ValueError, match=f"{field} must be one of .*'{value}'"):
        store.add_message(owner, chat.id, **kwargs)
    assert store.messages(owner, chat.id) == []


def test_add_message_to_missing_conversation_raises(store: Store, owner: int) -> None:
    with pytest.raises(ConversationNotFound, match="Conversation 9"):
        store.add_message(owner, 9, role="user", content="x")


def test_messages_are_oldest_first(store: Store, owner: int, chat: Conversation) -> None:
    for i in range(4):
        store.add_message(owner, chat.id, role="user" if i % 2 == 0 else "assistant",
                          content=f"m{i}")  # fmt: skip
    assert [m.content for m in store.messages(owner, chat.id)] == ["m0", "m1", "m2", "m3"]


def test_messages_of_empty_conversation(store: Store, owner: int, chat: Conversation) -> None:
    assert store.messages(owner, chat.id) == []


def test_delete_messages_from_removes_that_and_later(
    store: Store, owner: int, chat: Conversation
) -> None:
    kept = store.add_message(owner, chat.id, role="user", content="q1")
    store.add_message(owner, chat.id, role="assistant", content="a1")
    cut = store.add_message(owner, chat.id, role="user", content="q2")
    store.add_message(owner, chat.id, role="assistant", content="a2")
    assert store.delete_messages_from(owner, chat.id, cut.id) == 2
    assert [m.content for m in store.messages(owner, chat.id)] == ["q1", "a1"]
    assert store.messages(owner, chat.id)[0] == kept


def test_delete_messages_from_leaves_other_conversations(
    store: Store, owner: int, chat: Conversation
) -> None:
    other = store.create_conversation(owner, title="other")
    first = store.add_message(owner, chat.id, role="user", content="q1")
    later_elsewhere = store.add_message(owner, other.id, role="user", content="keep me")
    store.delete_messages_from(owner, chat.id, first.id)
    assert store.messages(owner, other.id) == [later_elsewhere]


def test_delete_messages_from_unknown_message_raises(
    store: Store, owner: int, chat: Conversation
) -> None:
    other = store.create_conversation(owner, title="other")
    elsewhere = store.add_message(owner, other.id, role="user", content="x")
    with pytest.raises(MessageNotFound, match=f"Message {elsewhere.id} was not found"):
        store.delete_messages_from(owner, chat.id, elsewhere.id)
    assert store.messages(owner, other.id) == [elsewhere]


def test_deleting_the_user_deletes_their_conversations(tmp_path: Path) -> None:
    with Store(tmp_path / "hearth.db") as store:
        owner = store.create_user("alice", "staff", "h").id
        chat = store.create_conversation(owner, title="t")
        store.add_message(owner, chat.id, role="user", content="x")
    # Users are never deleted through the API (they are disabled); the cascade guards the schema.
    import sqlite3

    conn = sqlite3.connect(tmp_path / "hearth.db")
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:
        conn.execute("DELETE FROM users WHERE id = ?", (owner,))
    counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("conversations", "messages")]  # fmt: skip
    conn.close()
    assert counts == [0, 0]


def test_add_message_rejects_non_text_content(store: Store, owner: int, chat: Conversation) -> None:
    with pytest.raises(ValueError, match="content must be text, got None"):
        store.add_message(owner, chat.id, role="user", content=None)  # type: ignore[arg-type]


def test_add_message_rejects_negative_stats(store: Store, owner: int, chat: Conversation) -> None:
    with pytest.raises(ValueError, match=r"tokens_out .* -1"):
        store.add_message(owner, chat.id, role="assistant", content="x", tokens_out=-1)
    assert store.messages(owner, chat.id) == []
