"""Full-text search over a user's messages, against a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from backend.store.database import Conversation, Store


@pytest.fixture
def chat(store: Store, owner: int) -> Conversation:
    chat = store.create_conversation(owner, title="Geography")
    store.add_message(owner, chat.id, role="user", content="What is the capital of France?")
    store.add_message(owner, chat.id, role="assistant", content="The capital of France is Paris.")
    return chat


def test_search_finds_words_in_user_messages(store: Store, owner: int, chat: Conversation) -> None:
    [hit] = store.search(owner, "what")
    assert (hit.conversation_id, hit.role, hit.title) == (chat.id, "user", "Geography")


def test_search_finds_words_in_assistant_messages(
    store: Store, owner: int, chat: Conversation
) -> None:
    [hit] = store.search(owner, "paris")
    assert hit.role == "assistant"
    assert hit.message_id == store.messages(owner, chat.id)[1].id


def test_snippet_marks_the_match(store: Store, owner: int, chat: Conversation) -> None:
    [hit] = store.search(owner, "Paris")
    assert hit.snippet == "The capital of France is «Paris»."


def test_all_words_must_match(store: Store, owner: int, chat: Conversation) -> None:
    assert [h.role for h in store.search(owner, "capital paris")] == ["assistant"]


def test_last_word_matches_as_prefix(store: Store, owner: int, chat: Conversation) -> None:
    assert {h.role for h in store.search(owner, "capit")} == {"user", "assistant"}


def test_earlier_words_do_not_match_as_prefix(store: Store, owner: int, chat: Conversation) -> None:
    assert store.search(owner, "capit france") == []


def test_search_ignores_case_and_diacritics(store: Store, owner: int) -> None:
    chat = store.create_conversation(owner, title="Café")
    store.add_message(owner, chat.id, role="user", content="Un café crème, s'il vous plaît")
    [hit] = store.search(owner, "CAFE CREME")
    assert "«café»" in hit.snippet


def test_search_ranks_better_matches_first(store: Store, owner: int) -> None:
    chat = store.create_conversation(owner, title="t")
    weak = store.add_message(owner, chat.id, role="user", content="llama " + "filler " * 40)
    strong = store.add_message(owner, chat.id, role="user", content="llama llama llama")
    assert [h.message_id for h in store.search(owner, "llama")] == [strong.id, weak.id]


def test_search_respects_limit(store: Store, owner: int) -> None:
    chat = store.create_conversation(owner, title="t")
    for i in range(5):
        store.add_message(owner, chat.id, role="user", content=f"repeat {i}")
    assert len(store.search(owner, "repeat", limit=3)) == 3


@pytest.mark.parametrize(
    "query",
    ['"', "AND(", "*", "-", "-paris", "paris OR", "NEAR(paris france)", "content: paris",
     '"unbalanced', "^", "(((", "' OR 1=1 --", "owner_id : 2", "", "   "],
)  # fmt: skip
def test_hostile_queries_do_not_raise(
    store: Store, owner: int, chat: Conversation, query: str
) -> None:
    hits = store.search(owner, query)
    assert all(h.conversation_id == chat.id for h in hits)


def test_operator_words_are_searched_as_words(store: Store, owner: int) -> None:
    chat = store.create_conversation(owner, title="t")
    store.add_message(owner, chat.id, role="user", content="salt AND pepper OR NOT sugar")
    assert len(store.search(owner, "salt AND pepper")) == 1
    assert len(store.search(owner, "NOT")) == 1


def test_deleted_conversation_disappears_from_search(
    store: Store, owner: int, chat: Conversation
) -> None:
    store.delete_conversation(owner, chat.id)
    assert store.search(owner, "paris") == []


def test_deleted_messages_disappear_from_search(
    store: Store, owner: int, chat: Conversation
) -> None:
    reply = store.messages(owner, chat.id)[1]
    store.delete_messages_from(owner, chat.id, reply.id)
    assert store.search(owner, "paris") == []
    assert len(store.search(owner, "france")) == 1


def test_search_index_stays_consistent(store: Store, owner: int, chat: Conversation) -> None:
    other = store.create_conversation(owner, title="other")
    store.add_message(owner, other.id, role="user", content="more words here")
    store.delete_conversation(owner, chat.id)
    conn = sqlite3.connect(store.path)
    try:  # FTS5's own check of the index against the messages table; raises when they differ
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()
