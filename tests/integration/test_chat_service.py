"""A chat turn end to end: the real SmolLM2 engine and a real SQLite file."""

import threading

import pytest

from backend.admission.settings import AdmissionSettings
from backend.auth import CLI
from backend.chat.turns import (
    ChatInputError,
    ChatService,
    TurnFinished,
    TurnRefused,
    TurnSettings,
    TurnStarted,
)
from backend.engines.base import ChatDelta, ChatMessage, ChatOptions
from backend.engines.embedded import BUNDLED_MODEL_NAME
from tests.support.chat_service import model_service

QUESTION = "What is the capital of France? Answer in one sentence."
GREEDY = TurnSettings(BUNDLED_MODEL_NAME, "You are a helpful assistant.",
                      ChatOptions(temperature=0.0, num_ctx=2048, seed=1))  # fmt: skip


@pytest.fixture
def models(store, embedded_engine, tmp_path):
    """Admission for the turns, over this machine's real hardware."""
    return model_service(store, embedded_engine, tmp_path)


@pytest.fixture
def chat(store, embedded_engine, models):
    return ChatService(store, lambda: embedded_engine, models.chat)


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
    # The question alone is longer than the context: llama.cpp refuses it mid-turn.
    settings = TurnSettings(BUNDLED_MODEL_NAME, "", ChatOptions(num_ctx=256))
    events = list(chat.send(alice, None, "word " * 600, settings))
    reply = events[-1].reply
    assert reply.status == "error"
    assert "more than the model's context of 256 tokens" in reply.error
    assert "Generation settings" in reply.error  # says what to do about it
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


# -- every turn is checked before the store or the engine sees it ------------------------------


def _contexts(engine) -> list[int | None]:
    return [m.context_length for m in engine.loaded_models()]


@pytest.mark.parametrize("num_ctx", [10**9, "99999999999999999999", 2**64, float("inf"), "NaN"])
def test_an_absurd_context_is_refused_before_anything_is_saved_or_loaded(
    chat, store, alice, embedded_engine, num_ctx
):
    settings = TurnSettings(BUNDLED_MODEL_NAME, "", ChatOptions(num_ctx=num_ctx))
    with pytest.raises(ChatInputError, match=r"^Context length \(num_ctx\) must be"):
        list(chat.send(alice, None, "Hello?", settings))
    assert store.count_conversations(alice.id) == 0
    assert all(ctx is not None and ctx <= 8192 for ctx in _contexts(embedded_engine))


@pytest.mark.parametrize("model", ["bundled path", "../../etc/x.gguf", "/abs/path.gguf"])
def test_a_path_as_model_is_refused_before_anything_is_saved(
    chat, store, alice, smollm_path, model
):
    model = str(smollm_path) if model == "bundled path" else model  # a real .gguf on disk
    with pytest.raises(ChatInputError, match="it is a file path"):
        list(chat.send(alice, None, "Hello?", TurnSettings(model)))
    assert store.count_conversations(alice.id) == 0


def test_a_model_the_engine_does_not_have_is_refused_before_anything_is_saved(chat, store, alice):
    with pytest.raises(ChatInputError, match=r"'no-such-model' is not installed.*smollm2:135m"):
        list(chat.send(alice, None, "Hello?", TurnSettings("no-such-model")))
    assert store.count_conversations(alice.id) == 0


def test_a_context_beyond_the_models_training_is_capped_and_said(chat, store, alice,
                                                                 embedded_engine):  # fmt: skip
    settings = TurnSettings(BUNDLED_MODEL_NAME, "", ChatOptions(num_ctx=16384, num_predict=4))
    events = list(chat.send(alice, None, "Hello?", settings))
    started = events[0]
    assert "trained on a context of 8192 tokens" in started.note and "not 16384" in started.note
    stored = store.get_conversation(alice.id, started.conversation.id)
    assert stored.options["num_ctx"] == 8192
    assert _contexts(embedded_engine) == [8192]


def test_a_refused_load_stops_the_turn_before_anything_is_written(
    chat, models, store, alice, users, embedded_engine
):
    admin = users.add_user(CLI, "root", "root-pass-123", "admin")
    first = list(chat.send(alice, None, QUESTION, GREEDY))
    conversation_id = first[0].conversation.id
    before = store.messages(alice.id, conversation_id)
    loaded_before = _contexts(embedded_engine)
    # A 1 TiB safety margin: no machine this runs on has room for any load.
    models.set_admission_settings(admin, AdmissionSettings("balanced", 1024 * 1024, "MiB"))
    unusual = TurnSettings(BUNDLED_MODEL_NAME, "", ChatOptions(num_ctx=768))
    turns = {
        "send": lambda: chat.send(alice, conversation_id, "More?", unusual),
        "new": lambda: chat.send(alice, None, "More?", unusual),
        "regenerate": lambda: chat.regenerate(alice, conversation_id, unusual),
        "edit": lambda: chat.edit_last(alice, conversation_id, "Else?", unusual),
    }
    for what, turn in turns.items():
        with pytest.raises(TurnRefused) as refused:
            list(turn())
        assert str(refused.value).startswith("Refused: smollm2:135m at num_ctx 768."), what
        assert store.messages(alice.id, conversation_id) == before, what
    assert store.count_conversations(alice.id) == 1
    assert _contexts(embedded_engine) == loaded_before  # the engine never saw the turns
    # Already loaded at the asked size: no estimate, no refusal.
    assert list(chat.send(alice, conversation_id, "Again?", GREEDY))[-1].reply.status


@pytest.mark.parametrize(
    ("text", "words"),
    [("a\x00b", "NUL character"), ("hi \ud800", "unpaired surrogate"),
     ("x" * 100_001, "100,001 characters long"), (["hi"], "must be text")],
)  # fmt: skip
def test_bad_message_text_is_refused_with_a_sentence(chat, store, alice, text, words):
    with pytest.raises(ChatInputError, match=words):
        list(chat.send(alice, None, text, GREEDY))
    assert store.count_conversations(alice.id) == 0
