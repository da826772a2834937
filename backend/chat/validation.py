"""The one set of rules for what a chat turn may carry: the Chat tab, /chat and the CLI alike.

Gradio delivers a number as int, float or str, and a caller by fn_index sends anything (None,
lists, huge ints, "Infinity", lone surrogates, NUL): every value is parsed here, and one that
is not admitted gets a sentence naming the field and the value, never a Python message.
Stored settings read back through the same rules, a bad value replaced by its default with a
note, so a bad row opens instead of breaking the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.engines.base import (
    DEFAULT_NUM_CTX,
    DEFAULT_TEMPERATURE,
    MAX_NUM_CTX,
    ChatMessage,
    ChatOptions,
    model_key,
    model_name_problem,
    quote_value,
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
MIN_NUM_CTX = 256
MIN_TEMPERATURE = 0.0
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**32 - 1  # llama.cpp seeds are 32-bit
MAX_MESSAGE_CHARS = 100_000  # ~28k tokens: more than most contexts hold
MAX_SYSTEM_PROMPT_CHARS = 20_000
MAX_CONVERSATION_ID = 2**63 - 1  # SQLite's INTEGER
MAX_STOP_SEQUENCES = 4  # as OpenAI's API
MAX_STOP_CHARS = 200
MAX_HISTORY_MESSAGES = 1_000  # a whole history sent by an API client
MAX_HISTORY_CHARS = 1_000_000  # ~ 250k tokens: more than any context
_MAX_NUMBER_CHARS = 40  # longer "numbers" are refused before int() spends time on them
_SURROGATE = re.compile(r"[\ud800-\udfff]")

TEMPERATURE = "Temperature"
NUM_CTX = "Context length (num_ctx)"
NUM_PREDICT = "Max reply tokens"
SEED = "Seed"
TOP_P = "Top p"
_OUT_OF_RANGE = ("too large", "too small")
MODEL_NOT_FOUND = "model not found"  # ChatInputError.reason when the engine lacks the model


class ChatInputError(ValueError):
    """The turn cannot start as asked; the message names the field and the value."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason  # "too large", "not a number", ... for notes about stored values


@dataclass(frozen=True)
class TurnSettings:
    model: str
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    options: ChatOptions = field(default_factory=ChatOptions)


@dataclass(frozen=True)
class StoredSettings:
    """A conversation's settings as read back: usable values, and what had to be replaced."""

    model: str
    system_prompt: str
    options: ChatOptions
    notes: tuple[str, ...] = ()


# -- numbers ---------------------------------------------------------------------------------


def _refuse(label: str, rule: str, value: object, reason: str) -> ChatInputError:
    return ChatInputError(f"{label} must be {rule}; got {quote_value(value)} ({reason}).", reason)


def _number(label: str, rule: str, value: object) -> int | float:
    """The number in an int, a float or a numeric str; anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(label, rule, value, "not a number")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMBER_CHARS:
            raise _refuse(label, rule, value, "not a number")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise _refuse(label, rule, value, "not a number") from None
    else:
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise _refuse(label, rule, value, "not a finite number")
    return number


def _in_range(label: str, rule: str, value: object, number: float, low: float, high: float) -> None:
    if number > high:
        raise _refuse(label, rule, value, "too large")
    if number < low:
        raise _refuse(label, rule, value, "too small")


def parse_int(label: str, value: object, low: int, high: int) -> int:
    """A whole number from low to high, from an int, an integral float or a numeric str."""
    rule = f"a whole number from {low} to {high}"
    number = _number(label, rule, value)
    if isinstance(number, float):
        if not number.is_integer():
            raise _refuse(label, rule, value, "not a whole number")
        number = int(number)
    _in_range(label, rule, value, number, low, high)
    return number


def parse_float(label: str, value: object, low: float, high: float) -> float:
    """A finite number from low to high, from an int, a float or a numeric str."""
    rule = f"a number from {low:g} to {high:g}"
    number = _number(label, rule, value)
    _in_range(label, rule, value, number, low, high)  # before float(): a huge int overflows it
    return float(number)


def _optional_int(label: str, value: object, low: int, high: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_int(label, value, low, high)


def _optional_float(label: str, value: object, low: float, high: float) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_float(label, value, low, high)


def chat_options(
    temperature: object = DEFAULT_TEMPERATURE,
    num_ctx: object = DEFAULT_NUM_CTX,
    max_tokens: object = None,
    seed: object = None,
    top_p: object = None,
    stop: object = None,
) -> ChatOptions:
    """Checked ChatOptions from raw values; max_tokens 0 or empty means "until the model stops"."""
    ctx = parse_int(NUM_CTX, num_ctx, MIN_NUM_CTX, MAX_NUM_CTX)
    return ChatOptions(
        temperature=_temperature(temperature),
        num_ctx=ctx,
        num_predict=_optional_int(NUM_PREDICT, max_tokens, 0, ctx) or None,
        seed=_optional_int(SEED, seed, 0, MAX_SEED),
        top_p=_optional_float(TOP_P, top_p, 0.0, 1.0),
        stop=stop_sequences(stop),
    )


def stop_sequences(value: object) -> tuple[str, ...]:
    """Up to MAX_STOP_SEQUENCES non-empty texts (one text, a list or None, as OpenAI's API)."""
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or len(values) > MAX_STOP_SEQUENCES:
        raise ChatInputError(
            f"Stop sequences must be a text or a list of at most {MAX_STOP_SEQUENCES} texts; "
            f"got {quote_value(value)}."
        )
    checked = tuple(check_text("A stop sequence", v, MAX_STOP_CHARS) for v in values)
    if "" in checked:
        raise ChatInputError("A stop sequence must not be empty.")
    return checked


def checked_options(options: object) -> ChatOptions:
    """ChatOptions built anywhere (a dataclass does not check its fields), checked again."""
    if not isinstance(options, ChatOptions):
        raise ChatInputError(f"Chat options must be ChatOptions; got {quote_value(options)}.")
    return chat_options(options.temperature, options.num_ctx, options.num_predict,
                        options.seed, options.top_p, list(options.stop))  # fmt: skip


def conversation_ref(value: object) -> int | None:
    """A conversation id as a caller sent it; None or empty starts a new conversation."""
    return _optional_int("The conversation id", value, 1, MAX_CONVERSATION_ID)


# -- text ------------------------------------------------------------------------------------


def check_text(label: str, value: object, max_chars: int) -> str:
    """Text of at most max_chars, without NUL or unpaired surrogates; None reads as empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ChatInputError(f"{label} must be text; got {quote_value(value)}.")
    if len(value) > max_chars:
        raise ChatInputError(
            f"{label} is {len(value):,} characters long; the limit is {max_chars:,}."
        )
    if (at := value.find("\x00")) >= 0:
        raise ChatInputError(
            f"{label} contains a NUL character (\\x00) at position {at + 1}; remove it."
        )
    if found := _SURROGATE.search(value):
        raise ChatInputError(
            f"{label} contains an invalid character (an unpaired surrogate, "
            f"U+{ord(found.group()):04X}) at position {found.start() + 1}: remove it, or copy "
            "the text again."
        )
    return value


def message_text(value: object, label: str = "The message") -> str:
    text = check_text(label, value, MAX_MESSAGE_CHARS).strip()
    if not text:
        empty = "Type a message first." if label == "The message" else f"{label} is empty."
        raise ChatInputError(empty)
    return text


def system_prompt(value: object) -> str:
    return check_text("The system prompt", value, MAX_SYSTEM_PROMPT_CHARS)


def model_name(value: object) -> str:
    """A model name (never a path); whether the engine has it is installed_model's question."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ChatInputError("Choose a model first.")
    if not isinstance(value, str):
        raise ChatInputError(f"The model must be a name from the list; got {quote_value(value)}.")
    if problem := model_name_problem(value.strip()):
        raise ChatInputError(f"Model {quote_value(value)} cannot be used: {problem}.")
    return value.strip()


def installed_model(name: str, installed: Iterable[str]) -> str:
    """The engine's own spelling of `name`; refused when the engine does not list it."""
    names = list(installed)
    matches = [n for n in names if n == name]
    matches = matches or [n for n in names if model_key(n) == model_key(name)]
    if matches:
        return matches[0]
    listed = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    raise ChatInputError(
        f"Model {quote_value(name)} is not installed on this engine"
        + (f"; installed: {listed}." if names else "; it has no models."),
        MODEL_NOT_FOUND,
    )


# -- whole settings --------------------------------------------------------------------------


def turn_settings(
    model: object,
    system: object = DEFAULT_SYSTEM_PROMPT,
    temperature: object = DEFAULT_TEMPERATURE,
    num_ctx: object = DEFAULT_NUM_CTX,
    max_tokens: object = None,
    seed: object = None,
) -> TurnSettings:
    """Checked TurnSettings from the raw values a form or an API call sent."""
    return TurnSettings(
        model=model_name(model),
        system_prompt=system_prompt(system),
        options=chat_options(temperature, num_ctx, max_tokens, seed),
    )


def checked_settings(settings: object) -> TurnSettings:
    """TurnSettings built anywhere, checked again (the service trusts no caller)."""
    if not isinstance(settings, TurnSettings):
        raise ChatInputError(f"Turn settings must be TurnSettings; got {quote_value(settings)}.")
    return TurnSettings(
        model=model_name(settings.model),
        system_prompt=system_prompt(settings.system_prompt),
        options=checked_options(settings.options),
    )


def stored_settings(model: object, system: object, options: object) -> StoredSettings:
    """A conversation row's settings read back: each bad value gives way to its default."""
    notes: list[str] = []

    def read(what: str, value: object, parse: Callable[[object], Any], default: Any) -> Any:
        if value is None:
            return default
        try:
            return parse(value)
        except ChatInputError as exc:
            verdict = "out of range" if exc.reason in _OUT_OF_RANGE else "not valid"
            instead = _DEFAULT_SHOWN.get(what) or f"{default:g}"
            notes.append(f"The stored {what} {quote_value(value)} was {verdict}; using {instead}.")
            return default

    values = options if isinstance(options, Mapping) else {}
    if not isinstance(options, Mapping | None):
        notes.append("The stored generation settings were not readable; using the defaults.")
    ctx = read("context length", values.get("num_ctx"), _stored_ctx, DEFAULT_NUM_CTX)
    checked = ChatOptions(
        temperature=read(
            "temperature", values.get("temperature"), _temperature, DEFAULT_TEMPERATURE
        ),
        num_ctx=ctx,
        num_predict=read(
            "reply token limit",
            values.get("num_predict"),
            lambda v: _optional_int(NUM_PREDICT, v, 0, ctx) or None,
            None,
        ),
        seed=read("seed", values.get("seed"), lambda v: _optional_int(SEED, v, 0, MAX_SEED), None),
        top_p=read("top p", values.get("top_p"), lambda v: _optional_float(TOP_P, v, 0, 1), None),
    )
    prompt = read("system prompt", system, system_prompt, DEFAULT_SYSTEM_PROMPT)
    name = read("model", model or None, model_name, "")
    return StoredSettings(name, prompt, checked, tuple(notes))


_DEFAULT_SHOWN = {
    "reply token limit": "none",
    "seed": "none",
    "top p": "the engine's default",
    "system prompt": "the default",
    "model": "no model",
}


def _stored_ctx(value: object) -> int:
    return parse_int(NUM_CTX, value, MIN_NUM_CTX, MAX_NUM_CTX)


def _temperature(value: object) -> float:
    return parse_float(TEMPERATURE, value, MIN_TEMPERATURE, MAX_TEMPERATURE)


def options_dict(options: ChatOptions) -> dict[str, object]:
    """The options as stored with a conversation: only the values that are set."""
    return {key: value for key, value in vars(options).items() if value not in (None, ())}


def sent_history(messages: object) -> tuple[str, tuple[ChatMessage, ...]]:
    """A whole conversation an API client sent: its system prompt and the rest, checked.

    System messages (anywhere) make the system prompt; the last message must be the question.
    """
    if not isinstance(messages, list | tuple) or not messages:
        raise ChatInputError("Send at least one message; the last one is the question.")
    if len(messages) > MAX_HISTORY_MESSAGES:
        raise ChatInputError(
            f"{len(messages):,} messages were sent; the limit is {MAX_HISTORY_MESSAGES:,}."
        )
    system: list[str] = []
    turns: list[ChatMessage] = []
    for index, message in enumerate(messages, 1):
        if not isinstance(message, ChatMessage) or message.role not in _ROLES:
            raise ChatInputError(f"Message {index} must be a system, user or assistant message.")
        text = check_text(f"Message {index}", message.content, MAX_MESSAGE_CHARS)
        if message.role == "system":
            system.append(text)
        else:
            turns.append(ChatMessage(message.role, text))
    if sum(len(m.content) for m in turns) > MAX_HISTORY_CHARS:
        raise ChatInputError(f"The messages hold more than {MAX_HISTORY_CHARS:,} characters.")
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        raise ChatInputError("The last message must be the user's question, and not empty.")
    return system_prompt("\n\n".join(system)), tuple(turns)


_ROLES = ("system", "user", "assistant")
