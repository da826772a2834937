"""The rules for what the Models tab's operations accept: any caller may send any value.

A model name is text by the engines' one rule (backend.engines.base.model_name_problem); a
context length is a whole number in the range chats allow; a KV cache type is one the estimate
knows. A value that is not admitted gets a sentence naming it (shortened), never Python's words.
"""

from __future__ import annotations

from backend.engines.base import MAX_NUM_CTX, model_name_problem, quote_value
from backend.estimate.memory import KV_CACHE_TYPES

MIN_NUM_CTX = 256  # the chat rule's lower bound (backend.chat.validation.MIN_NUM_CTX)
SHOWN_NAME_CHARS = 80


class ModelInputError(ValueError):
    """A Models-tab value that is not admitted; the message names the value."""


def shown_name(name: str) -> str:
    """A model name as a message shows it: cut short, since messages echo caller input."""
    return name if len(name) <= SHOWN_NAME_CHARS else name[: SHOWN_NAME_CHARS - 1] + "…"


def shown_value(model: object) -> str:
    """A model as an audit row or a refusal names it: short, whatever the caller sent."""
    return shown_name(model.strip()) if isinstance(model, str) else quote_value(model)


def model_name(value: object, missing: str = "Pick a model first.") -> str:
    """The stripped name, or ModelInputError: `missing` when none was given, else why not."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ModelInputError(missing)
    if not isinstance(value, str):
        raise ModelInputError(f"The model must be a name; got {quote_value(value)}.")
    name = value.strip()
    if problem := model_name_problem(name):
        raise ModelInputError(f"Model {quote_value(value)} cannot be used: {problem}.")
    return name


def num_ctx(value: object) -> int:
    """A context length from MIN_NUM_CTX to MAX_NUM_CTX tokens, given as a whole number."""
    rule = f"a whole number from {MIN_NUM_CTX} to {MAX_NUM_CTX}"
    number = value
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int):
        raise ModelInputError(f"Context length must be {rule}; got {quote_value(value)}.")
    if not MIN_NUM_CTX <= number <= MAX_NUM_CTX:
        raise ModelInputError(f"Context length must be {rule}; got {quote_value(value)}.")
    return number


def kv_cache_type(value: object) -> str:
    """One of the KV cache types the estimate knows (f16, q8_0, q4_0)."""
    if isinstance(value, str) and value in KV_CACHE_TYPES:
        return value
    known = ", ".join(KV_CACHE_TYPES)
    raise ModelInputError(f"KV cache type must be one of {known}; got {quote_value(value)}.")
