"""OpenAI's chat-completions wire format, both ways: a request body in, replies and errors out.

Pure functions over JSON values. Every value a client sends is checked by the chat rules the
page uses (backend.chat.validation); a refusal is an ApiError carrying OpenAI's error shape
`{"error": {"message", "type", "param", "code"}}` and the HTTP status it goes with.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from backend.chat.validation import (
    DEFAULT_NUM_CTX,
    DEFAULT_TEMPERATURE,
    NUM_PREDICT,
    SEED,
    TEMPERATURE,
    TOP_P,
    ChatInputError,
    TurnSettings,
    chat_options,
    model_name,
)
from backend.services import ChatMessage, Message

T = TypeVar("T")
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# Fields that would change what kind of answer comes back: refused rather than ignored.
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "audio", "prediction")


@dataclass(frozen=True)
class ApiError(Exception):
    """A refusal in OpenAI's shape, with its HTTP status (and Retry-After, for 429)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after_s: float | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}  # fmt: skip

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


@dataclass(frozen=True)
class CompletionRequest:
    """A checked request: what the turn gets, and how the client wants the answer."""

    messages: tuple[ChatMessage, ...]
    settings: TurnSettings
    stream: bool
    include_usage: bool
    store: bool


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


def _checked(param: str, parse: Callable[[], T]) -> T:
    try:
        return parse()
    except ChatInputError as exc:
        raise invalid(str(exc), param) from exc


def _flag(body: dict[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"'{key}' must be true or false; got {type(value).__name__}.", key)
    return value


def message_content(index: int, content: object) -> str:
    """A message's text: a string, or a list of text parts (OpenAI's content parts)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise invalid(f"Message {index}: only text parts are supported, not {kind!r}.",
                              f"messages[{index - 1}].content")  # fmt: skip
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid(f"Message {index}: a text part needs 'text'.", "messages")
            texts.append(text)
        return "".join(texts)
    raise invalid(f"Message {index}: content must be text or a list of text parts.", "messages")


def chat_messages(raw: object) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise invalid("'messages' must be a non-empty list of messages.", "messages")
    messages = []
    for index, item in enumerate(raw, 1):
        role = item.get("role") if isinstance(item, dict) else None
        if not isinstance(role, str) or role not in _ROLES:
            shown = role if isinstance(role, str) else type(item).__name__
            raise invalid(f"Message {index}: role {shown!r} is not supported (system, developer,"
                          " user or assistant).", f"messages[{index - 1}].role")  # fmt: skip
        assert isinstance(item, dict)
        content = message_content(index, item.get("content"))
        messages.append(ChatMessage(_ROLES[role], content))  # type: ignore[arg-type]
    return tuple(messages)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for key in _UNSUPPORTED:
        if body.get(key) not in (None, [], "none"):
            raise invalid(f"'{key}' is not supported by Hearth.", key, "unsupported_parameter")
    if body.get("n") not in (None, 1):
        raise invalid("Hearth answers with one choice: 'n' must be 1.", "n")
    if body.get("logprobs") not in (None, False):
        raise invalid("'logprobs' is not supported by Hearth.", "logprobs")
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise invalid("Only plain text replies are supported: response_format {'type': 'text'}.",
                      "response_format")  # fmt: skip


def _param_of(message: str, max_tokens_param: str) -> str | None:
    """The request field a chat-options refusal is about, from the label it starts with."""
    labels = (
        (TEMPERATURE, "temperature"),
        (NUM_PREDICT, max_tokens_param),
        (SEED, "seed"),
        (TOP_P, "top_p"),
        ("A stop sequence", "stop"),
        ("Stop sequences", "stop"),
    )
    return next((param for label, param in labels if message.startswith(label)), None)


def completion_request(body: object) -> CompletionRequest:
    """A request body checked by the page's rules; ApiError (400) naming the field if not."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    _refuse_unsupported(body)
    model = _checked("model", lambda: model_name(body.get("model")))
    messages = chat_messages(body.get("messages"))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    temperature = body.get("temperature")
    options = {
        "temperature": DEFAULT_TEMPERATURE if temperature is None else temperature,
        "num_ctx": DEFAULT_NUM_CTX,
        "max_tokens": max_tokens,
        "seed": body.get("seed"),
        "top_p": body.get("top_p"),
        "stop": body.get("stop"),
    }
    try:
        checked = chat_options(**options)
    except ChatInputError as exc:
        raise invalid(str(exc), _param_of(str(exc), param)) from exc
    stream = _flag(body, "stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise invalid("'stream_options' must be an object.", "stream_options")
    return CompletionRequest(
        messages=messages,
        settings=TurnSettings(model, "", checked),
        stream=stream,
        include_usage=stream and _flag(stream_options, "include_usage"),
        store=_flag(body, "store"),
    )


# -- replies ---------------------------------------------------------------------------------


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage(reply: Message) -> dict[str, int]:
    prompt, completion = reply.tokens_in or 0, reply.tokens_out or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def finish_reason(reply: Message, max_tokens: int | None) -> str:
    """ "length" when the reply used every token it was allowed, else "stop"."""
    limited = max_tokens is not None and (reply.tokens_out or 0) >= max_tokens
    return "length" if limited else "stop"


def completion(reply_id: str, created: int, model: str, reply: Message,
               max_tokens: int | None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.content, "refusal": None},
            "logprobs": None,
            "finish_reason": finish_reason(reply, max_tokens),
        }],
        "usage": usage(reply),
    }  # fmt: skip


def chunk(reply_id: str, created: int, model: str, delta: dict[str, str],
          finish: str | None = None, *, with_usage: bool = False) -> dict[str, Any]:  # fmt: skip
    """One `chat.completion.chunk`; with_usage adds "usage": null, as OpenAI does when asked."""
    body: dict[str, Any] = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if with_usage:
        body["usage"] = None
    return body


def usage_chunk(reply_id: str, created: int, model: str, reply: Message) -> dict[str, Any]:
    """The last chunk when stream_options.include_usage: no choices, the usage."""
    return {"id": reply_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": None, "choices": [],
            "usage": usage(reply)}  # fmt: skip
