"""Importing a whole conversation: one transaction, all or nothing."""

from __future__ import annotations

import pytest

from backend.store.database import Store, UserNotFound

EXPORTED = [
    {"role": "system", "content": "Be brief.", "created_at": "2025-02-01T10:00:00Z"},
    {"role": "user", "content": "Capital of Italy?", "created_at": "2025-02-01T10:00:01Z"},
    {"role": "assistant", "content": "Rome.", "model": "qwen", "status": "stopped",
     "ttft_ms": 80.0, "tokens_in": 9, "tokens_out": 2, "tokens_per_s": 30.5,
     "created_at": "2025-02-01T10:00:02Z"},
]  # fmt: skip


def _import(store: Store, owner: int, messages: list[dict], **overrides: object):
    values: dict = {"title": "Imported", "model": "qwen", "system_prompt": "Be brief.",
                    "options": {"num_ctx": 2048}, "messages": messages}  # fmt: skip
    return store.import_conversation(owner, **{**values, **overrides})


def test_import_stores_conversation_and_messages(store: Store, owner: int) -> None:
    chat = _import(store, owner, EXPORTED, created_at="2025-02-01T09:59:59Z")
    assert (chat.title, chat.model, chat.options, chat.message_count) == (
        "Imported", "qwen", {"num_ctx": 2048}, 3
    )  # fmt: skip
    assert chat.created_at == "2025-02-01T09:59:59.000000+00:00"
    stored = store.messages(owner, chat.id)
    assert [(m.role, m.content) for m in stored] == [(m["role"], m["content"]) for m in EXPORTED]
    assert stored[2].created_at == "2025-02-01T10:00:02.000000+00:00"
    assert (stored[2].status, stored[2].tokens_out, stored[2].tokens_per_s) == ("stopped", 2, 30.5)


def test_imported_conversation_lists_first(store: Store, owner: int) -> None:
    store.create_conversation(owner, title="older")
    chat = _import(store, owner, EXPORTED)
    assert store.list_conversations(owner)[0].id == chat.id


def test_imported_messages_are_searchable(store: Store, owner: int) -> None:
    chat = _import(store, owner, EXPORTED)
    [hit] = store.search(owner, "rome")
    assert (hit.conversation_id, hit.snippet) == (chat.id, "«Rome».")


def test_messages_without_time_take_the_conversation_time(store: Store, owner: int) -> None:
    chat = _import(store, owner, [{"role": "user", "content": "hi"}], created_at="2024-12-31")
    assert store.messages(owner, chat.id)[0].created_at == "2024-12-31T00:00:00.000000+00:00"


def test_a_bad_message_imports_nothing(store: Store, owner: int) -> None:
    broken = [*EXPORTED, {"role": "wizard", "content": "abracadabra"}]
    with pytest.raises(ValueError, match=r"Message 4: role .*'wizard'"):
        _import(store, owner, broken)
    assert store.count_conversations(owner) == 0
    assert store.search(owner, "rome") == []


def test_import_for_missing_user_imports_nothing(store: Store, owner: int) -> None:
    with pytest.raises(UserNotFound):
        _import(store, owner + 100, EXPORTED)
    assert store.count_conversations(owner + 100) == 0


def test_import_of_empty_conversation(store: Store, owner: int) -> None:
    chat = _import(store, owner, [], title="")
    assert (chat.title, chat.message_count) == ("New chat", 0)


def test_export_then_import_round_trips(store: Store, owner: int) -> None:
    source = _import(store, owner, EXPORTED)
    exported = [
        {k: v for k, v in vars(m).items() if k not in ("id", "conversation_id")}
        for m in store.messages(owner, source.id)
    ]
    copy = _import(store, owner, exported)
    strip = [(m.role, m.content, m.created_at, m.status, m.tokens_per_s)
             for m in store.messages(owner, source.id)]  # fmt: skip
    assert [(m.role, m.content, m.created_at, m.status, m.tokens_per_s)
            for m in store.messages(owner, copy.id)] == strip  # fmt: skip
