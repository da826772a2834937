"""A chat turn end to end: the real SmolLM2 engine and a real SQLite file."""

import threading

import pytest

from backend.chat import ChatInputError, ChatService, TurnFinished, TurnSettings, TurnStarted
from backend.engines.base import ChatDelta, ChatMessage, ChatOptions
from backend.engines.embedded import BUNDLED_MODEL_NAME

QUESTION = "What is the capital of France? Answer in one sentence."
GREEDY = TurnSettings(BUNDLED_MODEL_NAME, "You are a helpful assistant.",
                      ChatOptions(temperature=0.0, num_ctx=2048, seed=1))  # fmt: skip


@pytest.fixture
def chat(store, embedded_engine):
    return ChatService(store, lambda: embedded_engine)


def test_question_is_committed_before_the_first_token(chat, store, alice):
    turn = chat.send(alice, None, QUESTION, GREEDY)
    started = next(turn)
    assert isinstance(started, TurnStarted)
    rows = store.messages(alice.id, started.conversation.id)
    assert [(m.role, m.content) for m in rows] == [("user", QUESTION)]
    turn.close()


def test_reply_is_persisted_with_the_engine_stats(chat, store, alice, embedded_engine):
    events = list(chat.send(alice, None, QUESTION, GREEDY))
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    streamed = "".join(e.text for e in events if isinstance(e, ChatDelta))
    reply = store.messages(alice.id, finished.reply.conversation_id)[-1]
    assert reply.content == streamed
    prompt = [ChatMessage("system", GREEDY.system_prompt), ChatMessage("user", QUESTION)]
    direct = embedded_engine.chat(BUNDLED_MODEL_NAME, prompt, GREEDY.options)
    assert streamed == "".join(e.text for e in direct if isinstance(e, ChatDelta))
    assert reply.status == "complete"
    assert reply.tokens_in > 10 and reply.tokens_out > 3
    assert reply.tokens_per_s > 0 and reply.ttft_ms > 0


def test_first_question_titles_the_conversation(chat, store, alice):
    events = list(chat.send(alice, None, QUESTION, GREEDY))
    conversation = store.get_conversation(alice.id, events[0].conversation.id)
    assert conversation.title == "What is the capital of France? Answer in one sentence."
    assert conversation.model == BUNDLED_MODEL_NAME
    assert conversation.options["num_ctx"] == 2048


def test_stop_keeps_the_partial_reply_marked_stopped(chat, store, alice):
    cancel = threading.Event()
    deltas = 0
    events = []
    for event in chat.send(alice, None, "Write a long story about a dragon.", GREEDY, cancel):
        events.append(event)
        if isinstance(event, ChatDelta):
            deltas += 1
            if deltas == 4:
                cancel.set()
    reply = events[-1].reply
    assert reply.status == "stopped"
    assert reply.content
    assert store.messages(alice.id, reply.conversation_id)[-1].content == reply.content


def test_closing_the_turn_midway_still_saves_what_was_said(chat, store, alice):
    turn = chat.send(alice, None, "Write a long story about a dragon.", GREEDY)
    conversation_id = next(turn).conversation.id
    said = "".join(next(turn).text for _ in range(3))
    turn.close()  # what Gradio does when a browser goes away
    reply = store.messages(alice.id, conversation_id)[-1]
    assert (reply.role, reply.status, reply.content) == ("assistant", "stopped", said)


def test_engine_failure_is_saved_as_an_error_reply(chat, store, alice):
    settings = TurnSettings("no-such-model", "", ChatOptions())
    events = list(chat.send(alice, None, "Hello?", settings))
    reply = events[-1].reply
    assert reply.status == "error"
    assert "no-such-model" in reply.error
    assert [m.role for m in store.messages(alice.id, reply.conversation_id)] == [
        "user",
        "assistant",
    ]


def test_follow_up_continues_the_same_conversation(chat, store, alice):
    first = list(chat.send(alice, None, QUESTION, GREEDY))
    conversation_id = first[0].conversation.id
    list(chat.send(alice, conversation_id, "And of Italy?", GREEDY))
    roles = [m.role for m in store.messages(alice.id, conversation_id)]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_regenerate_replaces_only_the_last_reply(chat, store, alice):
    first = list(chat.send(alice, None, QUESTION, GREEDY))
    conversation_id = first[0].conversation.id
    old_reply = first[-1].reply
    events = list(chat.regenerate(alice, conversation_id, GREEDY))
    rows = store.messages(alice.id, conversation_id)
    assert [m.role for m in rows] == ["user", "assistant"]
    assert rows[-1] == events[-1].reply
    assert rows[-1] != old_reply  # a fresh row (SQLite may reuse the id), not the old one


def test_edit_last_question_resends_it(chat, store, alice):
    first = list(chat.send(alice, None, QUESTION, GREEDY))
    conversation_id = first[0].conversation.id
    list(chat.edit_last(alice, conversation_id, "What is the capital of Spain?", GREEDY))
    rows = store.messages(alice.id, conversation_id)
    assert (rows[0].role, rows[0].content) == ("user", "What is the capital of Spain?")
    assert len(rows) == 2


def test_long_history_reports_left_out_messages(chat, store, alice):
    small = TurnSettings(BUNDLED_MODEL_NAME, "", ChatOptions(num_ctx=512, num_predict=4))
    conversation_id = None
    for i in range(6):
        events = list(chat.send(alice, conversation_id, f"Note {i}: " + "word " * 120, small))
        conversation_id = events[0].conversation.id
    assert events[0].dropped_messages > 0
    assert events[-1].reply.status == "complete"


@pytest.mark.parametrize(("text", "model"), [("   ", BUNDLED_MODEL_NAME), ("hi", "")])
def test_empty_message_or_model_is_refused_before_anything_is_saved(
    chat, store, alice, text, model
):
    with pytest.raises(ChatInputError):
        list(chat.send(alice, None, text, TurnSettings(model)))
    assert store.count_conversations(alice.id) == 0


def test_edit_without_a_model_loses_nothing(chat, store, alice):
    first = list(chat.send(alice, None, QUESTION, GREEDY))
    conversation_id = first[0].conversation.id
    with pytest.raises(ChatInputError, match="Choose a model"):
        list(chat.edit_last(alice, conversation_id, "Something else?", TurnSettings("")))
    rows = store.messages(alice.id, conversation_id)
    assert [(m.role, m.content) for m in rows] == [
        ("user", QUESTION),
        ("assistant", rows[1].content),
    ]
