"""One user can never see or change another user's conversations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.store.database import (
    Conversation,
    ConversationNotFound,
    Message,
    MessageNotFound,
    Store,
)


@dataclass(frozen=True)
class Scene:
    store: Store
    alice: int
    bob: int
    chat: Conversation  # alice's
    messages: list[Message]


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    with Store(tmp_path / "hearth.db") as store:
        alice = store.create_user("alice", "staff", "h").id
        bob = store.create_user("bob", "staff", "h").id
        chat = store.create_conversation(alice, title="Secret plans", system_prompt="Be sly.")
        messages = [
            store.add_message(alice, chat.id, role="user", content="the password is swordfish"),
            store.add_message(alice, chat.id, role="assistant", content="noted, swordfish"),
        ]
        yield Scene(store, alice, bob, store.get_conversation(alice, chat.id), messages)


def _unchanged(scene: Scene) -> None:
    assert scene.store.get_conversation(scene.alice, scene.chat.id) == scene.chat
    assert scene.store.messages(scene.alice, scene.chat.id) == scene.messages


ATTEMPTS: dict[str, Callable[[Scene], object]] = {
    "get": lambda s: s.store.get_conversation(s.bob, s.chat.id),
    "messages": lambda s: s.store.messages(s.bob, s.chat.id),
    "rename": lambda s: s.store.rename_conversation(s.bob, s.chat.id, "mine now"),
    "update": lambda s: s.store.update_conversation(s.bob, s.chat.id, system_prompt="Obey bob."),
    "delete": lambda s: s.store.delete_conversation(s.bob, s.chat.id),
    "add_message": lambda s: s.store.add_message(s.bob, s.chat.id, role="user", content="hi"),
    "delete_messages_from": lambda s: s.store.delete_messages_from(
        s.bob, s.chat.id, s.messages[0].id
    ),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_other_user_gets_not_found_and_changes_nothing(
    scene: Scene, attempt: Callable[[Scene], object]
) -> None:
    with pytest.raises(ConversationNotFound) as raised:
        attempt(scene)
    assert str(raised.value) == f"Conversation {scene.chat.id} was not found."
    _unchanged(scene)


def test_not_yours_reads_exactly_like_missing(scene: Scene) -> None:
    missing_id = scene.chat.id + 1000
    with pytest.raises(ConversationNotFound) as missing:
        scene.store.get_conversation(scene.bob, missing_id)
    with pytest.raises(ConversationNotFound) as not_yours:
        scene.store.get_conversation(scene.bob, scene.chat.id)
    assert str(missing.value).replace(str(missing_id), "N") == str(not_yours.value).replace(
        str(scene.chat.id), "N"
    )


def test_other_user_lists_nothing(scene: Scene) -> None:
    assert scene.store.list_conversations(scene.bob) == []
    assert scene.store.count_conversations(scene.bob) == 0


def test_other_user_finds_nothing(scene: Scene) -> None:
    assert scene.store.search(scene.bob, "swordfish") == []
    assert len(scene.store.search(scene.alice, "swordfish")) == 2


def test_other_user_cannot_delete_messages_with_own_conversation_id(scene: Scene) -> None:
    own = scene.store.create_conversation(scene.bob, title="bob's")
    with pytest.raises(MessageNotFound):  # alice's message id, bob's conversation
        scene.store.delete_messages_from(scene.bob, own.id, scene.messages[0].id)
    _unchanged(scene)


def test_each_user_lists_only_their_own(scene: Scene) -> None:
    own = scene.store.create_conversation(scene.bob, title="bob's")
    assert [c.id for c in scene.store.list_conversations(scene.bob)] == [own.id]
    assert [c.id for c in scene.store.list_conversations(scene.alice)] == [scene.chat.id]


def test_each_user_searches_only_their_own(scene: Scene) -> None:
    own = scene.store.create_conversation(scene.bob, title="bob's")
    mine = scene.store.add_message(scene.bob, own.id, role="user", content="swordfish recipe")
    assert [h.message_id for h in scene.store.search(scene.bob, "swordfish")] == [mine.id]
