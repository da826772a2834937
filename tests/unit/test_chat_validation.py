"""The chat input rules: every value a form, /chat or a script may send, good and bad."""

from __future__ import annotations

import json
import math

import pytest

from backend.chat.validation import (
    DEFAULT_NUM_CTX,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    MAX_MESSAGE_CHARS,
    MAX_NUM_CTX,
    MAX_SYSTEM_PROMPT_CHARS,
    ChatInputError,
    TurnSettings,
    chat_options,
    checked_settings,
    conversation_ref,
    installed_model,
    message_text,
    model_name,
    stored_settings,
    system_prompt,
    turn_settings,
)
from backend.engines.base import ChatOptions, quote_value

HUGE_TEXT = "x" * 100_001
BAD_NUMBERS = [10**9, "99999999999999999999", 2**64, -1, 0, "abc", "NaN", float("inf"),
               "Infinity", float("nan"), "2.5", 2.5, None, [], {}, True, "", "\ud800", "1\x00",
               HUGE_TEXT]  # fmt: skip


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=lambda v: quote_value(v, 24))
def test_a_bad_context_length_is_refused_naming_the_field_and_value(value):
    with pytest.raises(ChatInputError) as refused:
        chat_options(num_ctx=value)
    message = str(refused.value)
    assert message.startswith("Context length (num_ctx) must be a whole number from 256 to 131072")
    assert quote_value(value) in message
    assert len(message) < 200  # the value is cut short, however long it was


@pytest.mark.parametrize(
    ("value", "reason"),
    [(10**9, "too large"), ("99999999999999999999", "too large"), (2**64, "too large"),
     (-1, "too small"), (0, "too small"), ("abc", "not a number"), (None, "not a number"),
     ("NaN", "not a finite number"), (float("inf"), "not a finite number"),
     ("2.5", "not a whole number"), (2.5, "not a whole number"), (True, "not a number"),
     ([], "not a number"), ({}, "not a number")],
)  # fmt: skip
def test_the_refusal_says_what_is_wrong_with_the_value(value, reason):
    with pytest.raises(ChatInputError, match=f"\\({reason}\\)"):
        chat_options(num_ctx=value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4096, 4096), ("4096", 4096), (4096.0, 4096), (" 2048 ", 2048), ("1e3", 1000),
     (256, 256), (MAX_NUM_CTX, MAX_NUM_CTX)],
)  # fmt: skip
def test_gradio_forms_of_a_context_length_are_accepted(value, expected):
    assert chat_options(num_ctx=value).num_ctx == expected


@pytest.mark.parametrize("value", ["NaN", float("inf"), -0.1, 2.01, "abc", None, [], True, 10**400])
def test_a_bad_temperature_is_refused(value):
    with pytest.raises(ChatInputError, match=r"^Temperature must be a number from 0 to 2; got"):
        chat_options(temperature=value)


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), ("0.7", 0.7), (2, 2.0), (1.25, 1.25)])
def test_good_temperatures_are_floats(value, expected):
    temperature = chat_options(temperature=value).temperature
    assert isinstance(temperature, float) and temperature == expected


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), (0, None), (0.0, None),
                                                 (100, 100), ("64", 64), (4096, 4096)])  # fmt: skip
def test_max_tokens_zero_or_empty_means_until_the_model_stops(value, expected):
    assert chat_options(num_ctx=4096, max_tokens=value).num_predict == expected


@pytest.mark.parametrize("value", [-1, 2.5, 4097, "abc", float("inf"), [], 10**30])
def test_max_tokens_beyond_the_context_or_malformed_are_refused(value):
    with pytest.raises(ChatInputError, match=r"^Max reply tokens must be a whole number from 0 to"):
        chat_options(num_ctx=4096, max_tokens=value)


@pytest.mark.parametrize("value", [-1, 2**32, "x", 1.5])
def test_a_bad_seed_is_refused(value):
    with pytest.raises(ChatInputError, match=r"^Seed must be"):
        chat_options(seed=value)


@pytest.mark.parametrize(
    ("value", "words"),
    [("a\x00b", "NUL character (\\x00) at position 2"),
     ("ok \ud800", "unpaired surrogate, U+D800) at position 4"),
     ("x" * (MAX_MESSAGE_CHARS + 1), f"{MAX_MESSAGE_CHARS + 1:,} characters long"),
     (["hi"], "must be text; got a list of 1 item(s)"), (12, "must be text; got 12")],
)  # fmt: skip
def test_a_bad_message_is_refused_with_what_is_wrong(value, words):
    with pytest.raises(ChatInputError) as refused:
        message_text(value)
    assert str(refused.value).startswith("The message ")
    assert words in str(refused.value)


@pytest.mark.parametrize("value", ["", "   \n", None])
def test_an_empty_message_asks_for_one(value):
    with pytest.raises(ChatInputError, match=r"^Type a message first.$"):
        message_text(value)


def test_a_message_up_to_the_limit_is_kept_stripped():
    long = "word " * (MAX_MESSAGE_CHARS // 5)
    assert message_text(long) == long.strip()
    assert message_text("  hi\n") == "hi"


@pytest.mark.parametrize("value", ["\x00", "\ud800", "x" * (MAX_SYSTEM_PROMPT_CHARS + 1), 3, []])
def test_a_bad_system_prompt_is_refused(value):
    with pytest.raises(ChatInputError, match=r"^The system prompt "):
        system_prompt(value)


@pytest.mark.parametrize(
    "value",
    ["../../etc/x.gguf", "/abs/path.gguf", "~/x.gguf", "C:\\models\\x.gguf", "a/../b", "./x",
     "a\x00b", "\ud800", "x" * 100_000, "tab\there"],
)  # fmt: skip
def test_a_path_or_malformed_name_is_not_a_model(value):
    with pytest.raises(ChatInputError) as refused:
        model_name(value)
    assert str(refused.value).startswith(f"Model {quote_value(value)} cannot be used: ")
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("value", [[], {}, 5, True])
def test_a_model_must_be_text(value):
    with pytest.raises(ChatInputError, match=r"^The model must be a name from the list; got"):
        model_name(value)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_model_asks_for_one(value):
    with pytest.raises(ChatInputError, match=r"^Choose a model first.$"):
        model_name(value)


@pytest.mark.parametrize("value", ["smollm2:135m", "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M",
                                   "my model", "SmolLM2-135M-Instruct.Q4_1"])  # fmt: skip
def test_model_names_of_both_engines_are_accepted(value):
    assert model_name(f" {value} ") == value


def test_an_installed_name_is_matched_as_the_engine_spells_it():
    installed = ["llama3.2:latest", "smollm2:135m", "Tiny-Q4_0"]
    assert installed_model("llama3.2", installed) == "llama3.2:latest"
    assert installed_model("SMOLLM2:135M", installed) == "smollm2:135m"
    assert installed_model("tiny-q4_0", installed) == "Tiny-Q4_0"


def test_a_model_the_engine_does_not_list_is_refused_with_the_list():
    with pytest.raises(ChatInputError, match=r"'qwen:7b' is not installed.*installed: a:1b, b:2b"):
        installed_model("qwen:7b", ["a:1b", "b:2b"])
    with pytest.raises(ChatInputError, match="it has no models"):
        installed_model("qwen:7b", [])


@pytest.mark.parametrize("value", [0, -5, "abc", 2**63, 2.5, [], float("inf")])
def test_a_bad_conversation_id_is_refused(value):
    with pytest.raises(ChatInputError, match=r"^The conversation id must be a whole number"):
        conversation_ref(value)


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("12", 12), (12.0, 12)])
def test_conversation_ids_in_their_gradio_forms(value, expected):
    assert conversation_ref(value) == expected


def test_turn_settings_check_every_field_and_keep_the_defaults():
    settings = turn_settings(" smollm2:135m ")
    assert settings == TurnSettings("smollm2:135m", DEFAULT_SYSTEM_PROMPT, ChatOptions())
    assert ChatOptions() == ChatOptions(temperature=DEFAULT_TEMPERATURE, num_ctx=DEFAULT_NUM_CTX)
    assert (DEFAULT_TEMPERATURE, DEFAULT_NUM_CTX) == (0.3, 4096)  # what the Chat tab shows


def test_settings_built_elsewhere_are_checked_again():
    smuggled = TurnSettings("m", "", ChatOptions(num_ctx=10**9))  # a dataclass checks nothing
    with pytest.raises(ChatInputError, match="Context length"):
        checked_settings(smuggled)
    with pytest.raises(ChatInputError, match="Turn settings must be"):
        checked_settings({"model": "m"})


def test_good_stored_settings_read_back_without_notes():
    options = {"temperature": 0.5, "num_ctx": 2048, "num_predict": 64, "seed": 3, "later": 1}
    stored = stored_settings("m:1b", "Be brief.", options)
    assert stored.options == ChatOptions(0.5, 2048, 64, 3)
    assert (stored.model, stored.system_prompt, stored.notes) == ("m:1b", "Be brief.", ())


def test_a_poisoned_stored_context_length_opens_with_a_note():
    row = json.loads('{"num_ctx": 1000000000000000000000000000000, "temperature": NaN}')
    stored = stored_settings("m", "", row)
    assert stored.options.num_ctx == DEFAULT_NUM_CTX
    assert stored.options.temperature == DEFAULT_TEMPERATURE
    assert stored.notes == (
        f"The stored context length {10**30} was out of range; using 4096.",
        "The stored temperature nan was not valid; using 0.3.",
    )


@pytest.mark.parametrize(
    ("options", "note"),
    [({"num_ctx": "abc"}, "The stored context length 'abc' was not valid; using 4096."),
     ({"num_ctx": 2**64}, "was out of range; using 4096."),
     ({"num_predict": -1}, "The stored reply token limit -1 was out of range; using none."),
     ({"top_p": "high"}, "The stored top p 'high' was not valid; using the engine's default."),
     ("not a dict", "The stored generation settings were not readable; using the defaults.")],
)  # fmt: skip
def test_each_bad_stored_option_gives_way_to_its_default(options, note):
    stored = stored_settings("m", "", options)
    assert any(n.endswith(note) for n in stored.notes), stored.notes
    values = [v for k, v in vars(stored.options).items() if k != "stop"]
    assert all(v is None or (math.isfinite(v) and abs(v) < 2**63) for v in values)
    assert stored.options.stop == ()  # stop sequences are per request, never stored


def test_a_bad_stored_model_or_prompt_is_dropped_with_a_note():
    stored = stored_settings("/etc/x.gguf", "a\x00b", {})
    assert (stored.model, stored.system_prompt) == ("", DEFAULT_SYSTEM_PROMPT)
    assert len(stored.notes) == 2


def test_quoting_a_value_never_fails_and_stays_short():
    assert quote_value(10**5000).endswith("-bit number")
    assert len(quote_value("y" * 10_000)) == 60
    assert quote_value("\ud800") == "'\\ud800'"
