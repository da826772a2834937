"""OpenAI's chat-completions wire format: request bodies, SSE events, chunks, model lists, errors.

Pure functions (no I/O), written from OpenAI's API reference and what vLLM, SGLang, llama.cpp's
llama-server and llama-cpp-python's server send. Unit tested without a server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from backend.engines.base import (
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    EngineUnavailable,
    ModelNotFound,
    OutOfMemory,
)
from backend.engines.ollama import OOM_MARKERS as OLLAMA_OOM_MARKERS

# Ollama's markers cover llama.cpp's; PyTorch says "CUDA out of memory"; vLLM refuses to start
# a model whose KV cache does not fit with "No available memory for the cache blocks".
OOM_MARKERS = (*OLLAMA_OOM_MARKERS, "outofmemoryerror", "no available memory for the cache")
DONE = "[DONE]"


@dataclass(frozen=True)
class ServedModel:
    """One entry of GET /v1/models, with the facts some servers add to OpenAI's fields."""

    id: str
    owned_by: str = ""
    max_model_len: int | None = None  # vLLM: the context length it serves
    size_bytes: int | None = None  # llama-server: meta.size (the GGUF's bytes)
    n_ctx_train: int | None = None  # llama-server: meta.n_ctx_train


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class StreamChunk:
    """What one `data:` event of a chat-completions stream carries that Hearth uses."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    error: str | None = None


def root_url(url: str) -> str:
    """The server's root: OpenAI paths hang off `/v1`, metrics and health off the root."""
    root = url.strip().rstrip("/")
    return root.removesuffix("/v1")


def checked_root_url(url: str) -> str:
    """root_url() of an http(s) address with a host; EngineError naming the value otherwise."""
    root = root_url(url)
    try:
        parsed = httpx.URL(root)
    except (httpx.InvalidURL, TypeError) as exc:
        raise EngineError(f"'{url}' is not a server address ({exc}).") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise EngineError(f"'{url}' is not an http:// or https:// server address.")
    return root


def chat_request_body(
    model: str, messages: Sequence[ChatMessage], options: ChatOptions
) -> dict[str, Any]:
    """POST /v1/chat/completions, streamed, asking for usage in the last chunk.

    num_ctx is not sent: an OpenAI-compatible server fixes its context when it starts.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": options.temperature,
    }
    optional = {"max_tokens": options.num_predict, "seed": options.seed, "top_p": options.top_p,
                "stop": list(options.stop) or None}  # fmt: skip
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each server-sent event (data lines joined by newlines; comments skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)


def parse_chunk(payload: str) -> StreamChunk:
    """One `chat.completion.chunk` (or an error object sent inside the stream)."""
    try:
        chunk = json.loads(payload)
    except ValueError:
        return StreamChunk(error=f"an event that is not JSON: {payload[:200]!r}")
    if not isinstance(chunk, dict):
        return StreamChunk(error=f"an event that is not an object: {payload[:200]!r}")
    if "error" in chunk or chunk.get("object") == "error":
        return StreamChunk(error=error_message(chunk))
    text, finish = "", None
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        text = content if isinstance(content, str) else ""
        finish = choice.get("finish_reason") or None
    return StreamChunk(text=text, finish_reason=finish, usage=parse_usage(chunk.get("usage")))


def parse_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(
        _int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens"))
    )


def parse_model_list(payload: Any) -> list[ServedModel]:
    """GET /v1/models: `{"object": "list", "data": [{"id": ...}, ...]}`."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("no `data` list")
    models = []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        meta = entry.get("meta")
        if not isinstance(meta, dict):
            meta = {}
        models.append(
            ServedModel(
                id=entry["id"],
                owned_by=str(entry.get("owned_by") or ""),
                max_model_len=_int_or_none(entry.get("max_model_len")),
                size_bytes=_int_or_none(meta.get("size")),
                n_ctx_train=_int_or_none(meta.get("n_ctx_train")),
            )
        )
    return models


class ReplyTally:
    """Hearth's own clock and counts for one streamed reply (ttft, tok/s, tokens when unsent)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.content_chunks = 0
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False  # the server sent `data: [DONE]`

    def note(self, chunk: StreamChunk) -> None:
        if chunk.text:
            self.last_at = time.perf_counter()
            self.first_at = self.first_at or self.last_at
            self.content_chunks += 1
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.usage = chunk.usage or self.usage

    def stats(self, done_reason: str) -> ChatStats:
        """With no usage from the server, one streamed content chunk counts as one token.

        llama.cpp-family servers send one chunk per sampled token (a chunk may hold two when
        a multi-byte character spans tokens), so the count is a close lower bound.
        """
        reported = self.usage.completion_tokens if self.usage else None
        reply_tokens = reported if reported is not None else self.content_chunks
        decode_s = (self.last_at or 0.0) - (self.first_at or 0.0)
        rate = (reply_tokens - 1) / decode_s if reply_tokens > 1 and decode_s > 0 else None
        return ChatStats(
            done_reason=done_reason,
            prompt_tokens=self.usage.prompt_tokens if self.usage else None,
            reply_tokens=reply_tokens,
            ttft_ms=_ms(self.first_at - self.started) if self.first_at is not None else None,
            tokens_per_s=rate,  # the first token's time is the ttft: the rate is over the rest
            total_ms=_ms(time.perf_counter() - self.started),
            counted_by="engine" if reported is not None else "hearth",
        )


# -- errors --------------------------------------------------------------------------------


def error_message(body: Any) -> str:
    """The server's own sentence from any of the error shapes OpenAI-compatible servers use.

    OpenAI and llama-server: {"error": {"message": ...}}; vLLM: {"object": "error", "message":
    ...} (older) or the OpenAI shape; vLLM's API-key check: {"error": "Unauthorized"};
    FastAPI (llama-cpp-python): {"detail": ...}.
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    for key in ("error", "message", "detail"):
        if body.get(key):
            value = body[key]
            return (value if isinstance(value, str) else json.dumps(value))[:500]
    return json.dumps(body)[:500]


def error_from_status(status: int, message: str, *, url: str, model: str | None) -> EngineError:
    """Classify an HTTP error answer (status >= 400) or an error event inside a stream (0)."""
    message = message or "no explanation given"
    if _has_marker(message, OOM_MARKERS):
        subject = f" with {model}" if model else ""
        return OutOfMemory(f"The server at {url} ran out of memory{subject}: {message}")
    if status in (401, 403):
        return EngineError(
            f"The server at {url} refused Hearth's API key (HTTP {status}: {message}); "
            "check the key configured for this engine."
        )
    if status == 404 and model:
        return ModelNotFound(model, f"Model '{model}' is not served at {url} ({message}).")
    if status == 503:
        return EngineUnavailable(f"The server at {url} is not ready (HTTP 503: {message}).")
    if status == 0:
        return EngineError(f"The server at {url} stopped the reply with an error: {message}")
    return EngineError(f"The server at {url} answered HTTP {status}: {message}")


def error_from_transport(exc: httpx.HTTPError, *, url: str, during: str) -> EngineError:
    """Connection refused, timeouts and broken streams; `during` says what Hearth was doing."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return EngineUnavailable(f"The server at {url} is not reachable: {detail}")
    if isinstance(exc, httpx.TimeoutException):
        return EngineUnavailable(f"The server at {url} did not answer in time {during}.")
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        return EngineUnavailable(f"Lost the connection to {url} {during}: {detail}")
    return EngineError(f"Could not talk to {url} {during}: {detail}")


def redact(text: str, secret: str | None) -> str:
    """Never show an API key, even when a server echoes it back."""
    return text.replace(secret, "***") if secret else text


def _has_marker(text: str, markers: Sequence[str]) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in markers)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _ms(seconds: float) -> float:
    return seconds * 1000.0
