"""ChatService under a shutdown: new turns refused before any write, a cut reply kept whole.

The engine is the real OllamaEngine over HTTP, against the Ollama protocol test server with a
scripted reply (so the partial text can be checked as a prefix of what the engine was sending).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.chat.shutdown import INTERRUPTED_NOTE, SHUTTING_DOWN, ShutdownGate, ShuttingDown
from backend.chat.turns import ChatService, TurnFinished, TurnSettings, TurnStarted
from backend.engines.base import ChatDelta, ChatOptions
from backend.engines.ollama import OllamaEngine
from backend.store.database import Store
from tests.support.chat_service import model_service
from tests.support.ollama_server import BUNDLED_NAME
from tests.support.scripted_ollama import numbered_words, scripted_ollama

REPLY = numbered_words(3000)
SETTINGS = TurnSettings(BUNDLED_NAME, "", ChatOptions(num_ctx=2048))


@pytest.fixture(scope="module")
def engine() -> Iterator[OllamaEngine]:
    with scripted_ollama(REPLY, tokens_per_s=200) as server:
        opened = OllamaEngine(server.url, timeout_s=60)
        yield opened
        opened.close()


@pytest.fixture
def gate() -> ShutdownGate:
    return ShutdownGate()


@pytest.fixture
def chat(store: Store, engine: OllamaEngine, gate: ShutdownGate, tmp_path: Path) -> ChatService:
    models = model_service(store, engine, tmp_path)
    return ChatService(store, lambda: engine, models.chat, shutdown=gate)


def test_a_reply_cut_by_the_shutdown_is_saved_with_its_text_as_interrupted(
    chat, gate, store, alice
):
    events = chat.send(alice, None, "Count for me.", SETTINGS)
    started = next(events)
    assert isinstance(started, TurnStarted)
    streamed = ""
    for event in events:
        if isinstance(event, ChatDelta):
            streamed += event.text
            if len(streamed.split()) >= 3:
                break
    report = gate.drain(grace_s=0, save_s=0)  # close, cut at once; the turn saves as it ends
    assert report.in_flight == 1
    rest = list(events)
    streamed += "".join(e.text for e in rest if isinstance(e, ChatDelta))
    finished = rest[-1]
    assert isinstance(finished, TurnFinished)
    reply = store.messages(alice.id, started.conversation.id)[-1]
    assert (reply.role, reply.status, reply.error) == ("assistant", "interrupted", INTERRUPTED_NOTE)
    assert reply == finished.reply
    assert reply.content == streamed and len(streamed.split()) >= 3
    assert REPLY.startswith(reply.content) and reply.content != REPLY
    assert gate.running() == 0


def test_a_new_turn_while_shutting_down_is_refused_before_anything_is_written(
    chat, gate, store, alice
):
    gate.close()
    with pytest.raises(ShuttingDown, match=re.escape(SHUTTING_DOWN)):
        next(chat.send(alice, None, "Hello?", SETTINGS))
    assert store.list_conversations(alice.id) == []


def test_answer_again_while_shutting_down_deletes_nothing(chat, gate, store, alice):
    events = list(chat.send(alice, None, "Count.", TurnSettings(
        BUNDLED_NAME, "", ChatOptions(num_ctx=2048, num_predict=4))))  # fmt: skip
    conversation_id = events[0].conversation.id
    before = store.messages(alice.id, conversation_id)
    gate.close()
    with pytest.raises(ShuttingDown):
        next(chat.regenerate(alice, conversation_id, SETTINGS))
    assert store.messages(alice.id, conversation_id) == before
    assert before[-1].status == "complete"
