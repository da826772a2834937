"""OpenAICompatEngine: chat with vLLM, SGLang, llama-server or llama-cpp-python's server.

It speaks OpenAI's `/v1/models` and streaming `/v1/chat/completions` through httpx directly
(the `openai` SDK is not a dependency, and httpx is already installed with gradio and ollama).
These servers load their models when they start: Hearth chats with what they serve and does
not pull, delete, load or unload (`can_manage_models` is False).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import httpx

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    EngineStatus,
    InstalledModel,
    LoadedModel,
    ModelFactsUnavailable,
    ModelNotFound,
    ModelSpec,
)
from backend.engines.http_hooks import response_hooks
from backend.engines.openai_wire import (
    DONE,
    ReplyTally,
    ServedModel,
    chat_request_body,
    checked_root_url,
    error_from_status,
    error_from_transport,
    error_message,
    parse_chunk,
    parse_model_list,
    redact,
    sse_data,
)
from backend.engines.server_facts import ServerFacts, read_server_facts
from backend.engines.stream_guard import StreamGuard

DEFAULT_TIMEOUT_S = 600.0  # a queued request may wait minutes for its first token
CONNECT_TIMEOUT_S = 5.0
STATUS_TIMEOUT_S = 3.0
# Between two chunks of a reply that has started, servers send tokens many times a second;
# this long a silence means the host froze or the network dropped (a killed server closes
# the connection, which ends the stream at once).
STALL_TIMEOUT_S = 30.0


class OpenAICompatEngine:
    """One OpenAI-compatible server; every call is one HTTP request (or one streamed response)."""

    kind = "openai"
    can_manage_models = False  # models are chosen when the server starts

    def __init__(
        self,
        url: str,
        *,
        name: str = "openai",
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.url = checked_root_url(url)
        self._api_key = api_key or None
        self._stall_timeout_s = stall_timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        self._client = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, event_hooks=response_hooks()
        )
        # Chats get a fresh connection each: the stream guard needs the socket from its connect.
        self._chat_client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
            event_hooks=response_hooks(),
        )

    def __repr__(self) -> str:
        return f"OpenAICompatEngine(name={self.name!r}, url={self.url!r})"  # never the key

    def close(self) -> None:
        self._client.close()
        self._chat_client.close()

    # -- state ---------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        """GET /v1/models; never raises.

        On llama-cpp-python's server this request waits for its model lock and so ends a
        reply in flight: probe such a server sparingly.
        """
        try:
            served = self.served_models(timeout_s=STATUS_TIMEOUT_S)
        except EngineError as exc:
            return EngineStatus(self.name, False, str(exc))
        names = ", ".join(m.id for m in served) or "no models"
        return EngineStatus(self.name, True, f"OpenAI-compatible server at {self.url} ({names})")

    def served_models(self, *, timeout_s: float | None = None) -> list[ServedModel]:
        """GET /v1/models, with the extra facts vLLM and llama-server add."""
        during = "while listing its models"
        try:
            if timeout_s is None:
                response = self._client.get("/v1/models")
            else:
                response = self._client.get("/v1/models", timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise self._redacted(error_from_transport(exc, url=self.url, during=during)) from exc
        if response.status_code == 404:
            raise EngineError(
                f"{self.url} has no /v1/models: is it the address of an OpenAI-compatible server?"
            )
        if response.status_code >= 400:
            message = error_message(response.text)
            raise self._redacted(
                error_from_status(response.status_code, message, url=self.url, model=None)
            )
        try:
            return parse_model_list(response.json())
        except ValueError as exc:
            raise EngineError(
                f"The server at {self.url} answered /v1/models with something that is not "
                f"an OpenAI model list ({exc})."
            ) from exc

    def served_model(self, model: str) -> ServedModel:
        """The server's entry for `model`; ModelNotFound when it does not list it."""
        served = self.served_models()
        found = next((m for m in served if m.id == model), None)
        if found is None:
            names = ", ".join(m.id for m in served) or "nothing"
            raise ModelNotFound(
                model, f"Model '{model}' is not served at {self.url} (it serves {names})."
            )
        return found

    def list_models(self) -> list[InstalledModel]:
        """What the server serves; sizes are 0 unless the server tells them (llama-server)."""
        return [
            InstalledModel(name=m.id, size_bytes=m.size_bytes or 0) for m in self.served_models()
        ]

    def loaded_models(self) -> list[LoadedModel]:
        """Every served model is loaded; the server does not say how much memory it holds (0)."""
        return [
            LoadedModel(
                name=m.id,
                size_bytes=m.size_bytes or 0,
                vram_bytes=0,
                context_length=m.max_model_len,
            )
            for m in self.served_models()
        ]

    def show(self, model: str) -> ModelSpec:
        """OpenAI's API does not describe a model's architecture: say what is known, and refuse."""
        served = self.served_model(model)
        context = (
            f" with a context of {served.max_model_len} tokens" if served.max_model_len else ""
        )
        raise ModelFactsUnavailable(
            f"The server at {self.url} serves '{model}'{context} but does not tell its "
            "architecture, so Hearth cannot estimate its memory."
        )

    def server_facts(self) -> ServerFacts:
        """vLLM's load and KV cache, or llama-server's health and slots; never raises."""
        return read_server_facts(self._client)

    # -- inference -----------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        """Stream the reply; refuses a model the server does not list before sending it.

        (llama-cpp-python's server answers an unknown model name with its default model.)
        """
        if cancel is not None and cancel.is_set():
            yield ChatStats("cancelled", total_ms=0.0)
            return
        self.served_model(model)
        tally = ReplyTally()
        guard = StreamGuard(cancel, stall_timeout_s=self._stall_timeout_s)
        body = chat_request_body(model, messages, options)
        try:
            with (
                guard,
                self._chat_client.stream(
                    "POST", "/v1/chat/completions", json=body, extensions={"trace": guard.trace}
                ) as response,
            ):
                if response.status_code >= 400:
                    message = error_message(response.read().decode("utf-8", "replace"))
                    raise error_from_status(
                        response.status_code, message, url=self.url, model=model
                    )
                for payload in sse_data(guard.lines(response.iter_lines())):
                    if payload == DONE:
                        tally.done = True
                        break
                    chunk = parse_chunk(payload)
                    if chunk.error is not None:
                        raise error_from_status(0, chunk.error, url=self.url, model=model)
                    tally.note(chunk)
                    if chunk.text:
                        yield ChatDelta(chunk.text)
                    if cancel is not None and cancel.is_set():
                        break
        except httpx.HTTPError as exc:
            if not (guard.cancelled or (cancel is not None and cancel.is_set())):
                raise self._stream_error(exc, guard, model) from exc
        except EngineError as exc:
            raise self._redacted(exc) from exc
        stopped = guard.cancelled or (cancel is not None and cancel.is_set())
        cancelled = stopped and not tally.done  # a reply that ended before the stop is whole
        yield self._final_stats(tally, cancelled, model)

    def _final_stats(self, tally: ReplyTally, cancelled: bool, model: str) -> ChatStats:
        if cancelled:
            return tally.stats("cancelled")
        if tally.finish_reason is not None:
            return tally.stats(tally.finish_reason)
        if tally.done:
            # llama-cpp-python's server ends a reply this way when another request arrives.
            raise EngineError(
                f"The server at {self.url} ended the reply from {model} early without "
                "saying why (llama-cpp-python's server does this when another request arrives)."
            )
        raise EngineError(f"The server at {self.url} ended the reply from {model} unfinished.")

    def _stream_error(self, exc: httpx.HTTPError, guard: StreamGuard, model: str) -> EngineError:
        if guard.stalled:
            return error_from_transport(
                httpx.ReadTimeout(f"no data for {self._stall_timeout_s:g} s"),
                url=self.url,
                during=f"in the middle of the reply from {model}",
            )
        during = f"in the middle of the reply from {model}"
        return self._redacted(error_from_transport(exc, url=self.url, during=during))

    def _redacted(self, error: EngineError) -> EngineError:
        text = redact(str(error), self._api_key)
        if text == str(error):
            return error
        if isinstance(error, ModelNotFound):
            return ModelNotFound(error.model, text)
        return type(error)(text)
