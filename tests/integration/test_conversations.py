"""History operations through ConversationService on a real SQLite file."""

import json

import pytest

from backend.chat.conversations import ConversationService, InvalidExport
from backend.store.database import ConversationNotFound


@pytest.fixture
def history(store):
    return ConversationService(store)


@pytest.fixture
def chat_with_reply(store, alice):
    conversation = store.create_conversation(
        alice.id, title="Capitals", model="smollm2:135m", system_prompt="Be brief.",
        options={"temperature": 0.2, "num_ctx": 2048},
    )  # fmt: skip
    store.add_message(alice.id, conversation.id, role="user", content="Capital of France?")
    store.add_message(alice.id, conversation.id, role="assistant", content="Paris.",
                      model="smollm2:135m", ttft_ms=12.5, tokens_in=20, tokens_out=3,
                      tokens_per_s=80.0)  # fmt: skip
    store.add_message(alice.id, conversation.id, role="user", content="And Spain?")
    store.add_message(alice.id, conversation.id, role="assistant", content="Mad",
                      status="stopped")  # fmt: skip
    return conversation


def test_markdown_export_reads_like_the_chat(history, alice, chat_with_reply):
    text = history.export_markdown(alice, chat_with_reply.id)
    assert text.startswith("# Capitals\n")
    assert "## User\n\nCapital of France?" in text
    assert "## Assistant\n\nParis." in text
    assert "*(stopped)*" in text
    assert "System prompt: Be brief." in text


def test_json_export_imports_back_identically(history, store, alice, chat_with_reply):
    exported = history.export_json(alice, chat_with_reply.id)
    imported = history.import_json(alice, exported.encode())
    assert imported.id != chat_with_reply.id
    assert (imported.title, imported.model, imported.system_prompt) == (
        "Capitals", "smollm2:135m", "Be brief.")  # fmt: skip
    assert imported.options == {"temperature": 0.2, "num_ctx": 2048}
    before = store.messages(alice.id, chat_with_reply.id)
    after = store.messages(alice.id, imported.id)
    keep = ("role", "content", "status", "model", "ttft_ms", "tokens_in", "tokens_out")
    assert [[getattr(m, k) for k in keep] for m in after] == [
        [getattr(m, k) for k in keep] for m in before
    ]


def test_import_into_another_account_belongs_to_the_importer(history, store, alice, bob,
                                                             chat_with_reply):  # fmt: skip
    exported = history.export_json(alice, chat_with_reply.id)
    imported = history.import_json(bob, exported)
    assert store.get_conversation(bob.id, imported.id).title == "Capitals"
    with pytest.raises(ConversationNotFound):
        store.get_conversation(alice.id, imported.id)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not valid JSON"),
        (b'{"hello": 1}', "not a Hearth conversation export"),
        (json.dumps({"format": "hearth.conversation", "version": 9}).encode(), "version 9"),
        (json.dumps({"format": "hearth.conversation", "version": 1, "conversation": {},
                     "messages": [{"role": "wizard", "content": "x"}]}).encode(),
         "Message 1 has role 'wizard'"),
        (json.dumps({"format": "hearth.conversation", "version": 1, "conversation": {},
                     "messages": [{"role": "user", "content": "ok"},
                                  {"role": "assistant", "content": 42}]}).encode(),
         "Message 2 has no text content"),
    ],
)  # fmt: skip
def test_bad_import_is_refused_clearly_and_writes_nothing(history, store, alice, payload,
                                                          message):  # fmt: skip
    with pytest.raises(InvalidExport, match=message):
        history.import_json(alice, payload)
    assert store.count_conversations(alice.id) == 0


def test_pages_list_newest_first_and_clamp(history, store, alice):
    for i in range(5):
        store.create_conversation(alice.id, title=f"chat {i}")
    first = history.page(alice, 1, per_page=2)
    assert (first.total, first.pages) == (5, 3)
    assert [c.title for c in first.conversations] == ["chat 4", "chat 3"]
    assert [c.title for c in history.page(alice, 99, per_page=2).conversations] == ["chat 0"]


def test_rename_trims_and_refuses_empty(history, alice, chat_with_reply):
    assert history.rename(alice, chat_with_reply.id, "  Euro   capitals ").title == "Euro capitals"
    with pytest.raises(ValueError, match="cannot be empty"):
        history.rename(alice, chat_with_reply.id, "   ")


@pytest.mark.parametrize(
    "action",
    [
        lambda h, u, cid: h.open(u, cid),
        lambda h, u, cid: h.rename(u, cid, "mine now"),
        lambda h, u, cid: h.delete(u, cid),
        lambda h, u, cid: h.export_json(u, cid),
        lambda h, u, cid: h.export_markdown(u, cid),
    ],
    ids=["open", "rename", "delete", "export_json", "export_markdown"],
)
def test_another_user_cannot_touch_the_conversation(history, store, alice, bob, chat_with_reply,
                                                    action):  # fmt: skip
    with pytest.raises(ConversationNotFound):
        action(history, bob, chat_with_reply.id)
    assert store.get_conversation(alice.id, chat_with_reply.id).title == "Capitals"
    assert len(store.messages(alice.id, chat_with_reply.id)) == 4


def test_search_finds_only_the_users_own_messages(history, alice, bob, chat_with_reply):
    assert [h.conversation_id for h in history.search(alice, "Paris")] == [chat_with_reply.id]
    assert history.search(bob, "Paris") == []
    assert history.search(alice, "   ") == []
