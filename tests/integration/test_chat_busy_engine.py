"""Ollama's 503 "server busy" in a chat turn: retried with backoff, then explained; Stop cuts the
backoff short. Real OllamaEngine over real HTTP against the Ollama protocol test server."""

from __future__ import annotations

import threading

from backend.chat.turns import ChatService, TurnFinished, TurnSettings
from backend.engines.base import ChatOptions
from backend.engines.retry import BusyRetry
from tests.support.chat_service import model_service

SETTINGS = TurnSettings("smollm2:135m", "", ChatOptions(num_ctx=2048, num_predict=8))


def _chat(store, engine, tmp_path, retry: BusyRetry) -> ChatService:
    return ChatService(store, lambda: engine, model_service(store, engine, tmp_path).chat,
                       busy_retry=retry)  # fmt: skip


def test_a_busy_ollama_is_asked_again_until_it_answers(ollama_server, ollama_engine, store,
                                                         alice, tmp_path):  # fmt: skip
    ollama_server.answer_busy(2)
    chat = _chat(store, ollama_engine, tmp_path, BusyRetry(4, 0.05, 0.2))
    reply = list(chat.send(alice, None, "Say hello.", SETTINGS))[-1].reply
    assert reply.status == "complete" and reply.content
    assert ollama_server.events.busy_refusals == 2
    assert ollama_server.events.chat_requests == 1
    day = reply.created_at[:10]
    assert store.usage_by_day(day, day)[0].errors == 0


def test_an_ollama_that_stays_busy_is_explained_in_the_reply(ollama_server, ollama_engine,
                                                             store, alice, tmp_path):  # fmt: skip
    ollama_server.answer_busy(100)
    chat = _chat(store, ollama_engine, tmp_path, BusyRetry(3, 0.05, 0.2))
    events = list(chat.send(alice, None, "Say hello.", SETTINGS))
    reply = events[-1].reply
    assert reply.status == "error" and reply.content == ""
    assert "The engine is busy: it turned this reply away 3 times" in reply.error
    assert "OLLAMA_MAX_QUEUE" in reply.error and "maximum pending requests" in reply.error
    assert ollama_server.events.busy_refusals == 3
    stored = store.messages(alice.id, reply.conversation_id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "error")]
    day = reply.created_at[:10]
    assert store.usage_by_day(day, day)[0].errors == 1


def test_stop_during_the_backoff_ends_the_turn_at_once(ollama_server, ollama_engine, store,
                                                       alice, tmp_path):  # fmt: skip
    ollama_server.answer_busy(100)
    chat = _chat(store, ollama_engine, tmp_path, BusyRetry(4, 30.0, 30.0))
    cancel = threading.Event()
    events: list = []
    worker = threading.Thread(
        target=lambda: events.extend(chat.send(alice, None, "Say hello.", SETTINGS, cancel))
    )
    worker.start()
    assert ollama_server.wait_until(lambda e: e.busy_refusals >= 1)
    cancel.set()
    worker.join(20)  # far less than the 15-30 s backoff it was in
    assert not worker.is_alive(), "Stop did not cut the backoff short"
    assert isinstance(events[-1], TurnFinished)
    assert (events[-1].reply.status, events[-1].reply.error) == ("stopped", "")
    assert ollama_server.events.busy_refusals == 1
