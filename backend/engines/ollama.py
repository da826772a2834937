"""OllamaEngine: the Engine protocol over an Ollama server, through the official `ollama` client."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineBusy,
    EngineError,
    EngineStatus,
    EngineUnavailable,
    InstalledModel,
    LoadedModel,
    ModelNotFound,
    ModelSpec,
    OutOfMemory,
    PullProgress,
    checked_model_name,
    checked_num_ctx,
    close_stream,
    same_model,
)
from backend.engines.http_hooks import response_hooks
from backend.engines.retry import is_busy_message
from backend.estimate.model_info import spec_from_model_info
from backend.estimate.spec import ModelFactsError, TensorInfo

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 600.0  # a first chat waits for the model to load, which can take minutes
CONNECT_TIMEOUT_S = 5.0
STATUS_TIMEOUT_S = 3.0
# The substrings Ollama itself uses to recognise an out-of-memory failure.
OOM_MARKERS = ("out of memory", "cudamalloc failed", "failed to allocate", "insufficient memory")
# What an unknown tag looks like when pulling ("pull model manifest: file does not exist").
PULL_NOT_FOUND_MARKERS = ("file does not exist", "manifest unknown", "not found")
# An expiry further away than this means keep_alive was negative: the model never expires.
NEVER_EXPIRES_AFTER = timedelta(days=365 * 100)


class OllamaEngine:
    """Talks to one Ollama server; every call is one HTTP request (or one streamed response)."""

    name = "ollama"

    def __init__(self, host: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        import httpx
        import ollama

        self.host = host
        self._timeout_s = timeout_s
        timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        self._client = ollama.Client(host=host, timeout=timeout, event_hooks=response_hooks())
        # For the two requests the client has no public call for (version, verbose show).
        self._http = httpx.Client(
            base_url=host,
            timeout=timeout,
            follow_redirects=True,
            headers=_plain_headers(),
            event_hooks=response_hooks(),
        )

    def close(self) -> None:
        self._client.close()
        self._http.close()

    def _plain_json(
        self, method: str, path: str, *, json: object = None, timeout: float | None = None
    ) -> Any:
        """One request over httpx, a failure status raised as the client's ResponseError."""
        from ollama import ResponseError

        if timeout is None:  # the client's own timeouts (a short connect)
            response = self._http.request(method, path, json=json)
        else:
            response = self._http.request(method, path, json=json, timeout=timeout)
        if not response.is_success:
            raise ResponseError(response.text, response.status_code)
        return response.json()

    def _call(self, model: str | None, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run one client call, turning its exceptions into our EngineError family."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise map_error(exc, host=self.host, model=model) from exc

    # -- state ---------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        """GET /api/version; never raises."""
        try:
            # The client has no version() call: plain httpx, checked as the client checks.
            body = self._plain_json(
                "GET", "/api/version", timeout=min(STATUS_TIMEOUT_S, self._timeout_s)
            )
            version = str(body.get("version", ""))
        except Exception as exc:  # status() reports every failure instead of raising it
            return EngineStatus(self.name, False, str(map_error(exc, host=self.host)))
        return EngineStatus(self.name, True, f"Ollama {version} at {self.host}", version=version)

    def list_models(self) -> list[InstalledModel]:
        response = self._call(None, self._client.list)
        models = []
        for entry in response.models:
            details = entry.details
            models.append(
                InstalledModel(
                    name=entry.model or "",
                    size_bytes=int(entry.size or 0),
                    family=(details.family or "") if details else "",
                    parameter_size=(details.parameter_size or "") if details else "",
                    quantization=(details.quantization_level or "") if details else "",
                    modified_at=entry.modified_at.isoformat() if entry.modified_at else "",
                    digest=entry.digest or "",
                )
            )
        return models

    def loaded_models(self) -> list[LoadedModel]:
        response = self._call(None, self._client.ps)
        return [
            LoadedModel(
                name=entry.model or entry.name or "",
                size_bytes=int(entry.size or 0),
                vram_bytes=int(entry.size_vram or 0),
                context_length=entry.context_length,
                expires_at=expiry_iso(entry.expires_at),
            )
            for entry in response.models
        ]

    def show(self, model: str) -> ModelSpec:
        """/api/show with verbose=true: the metadata and, from Ollama, the file's tensors
        (name, type, shape), so the estimate can sum the real tensor bytes."""
        checked_model_name(model)
        # The client's show() cannot ask for verbose (the tensors): plain httpx.
        body = self._call(
            model, self._plain_json, "POST", "/api/show", json={"model": model, "verbose": True}
        )
        if not isinstance(body, dict):
            raise EngineError(f"Ollama at {self.host} sent no JSON object for /api/show {model}.")
        details = body.get("details")
        if not isinstance(details, dict):
            details = {}
        tensors = parse_tensors(body.get("tensors"))
        file_size = next(
            (m.size_bytes for m in self.list_models() if same_model(m.name, model)), None
        )
        try:
            spec = spec_from_model_info(
                model,
                body.get("model_info") or {},
                quantization=str(details.get("quantization_level") or ""),
                file_size_bytes=file_size,
                tied_embeddings=bool(tensors) and all(t.name != "output.weight" for t in tensors),
            )
        except ModelFactsError as exc:
            raise EngineError(str(exc)) from exc
        return replace(spec, tensors=tensors)

    # -- inference -----------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        checked_model_name(model)
        checked_num_ctx(options.num_ctx)
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            yield ChatStats("cancelled", total_ms=0.0)
            return
        try:  # lazy: the request goes out when the stream is first read
            stream = self._client.chat(
                model=model,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                options=options_to_ollama(options),
                stream=True,
            )
        except Exception as exc:
            raise map_error(exc, host=self.host, model=model) from exc
        ttft_ms: float | None = None
        final: dict[str, Any] | None = None
        try:
            for part in stream:
                text = part.message.content or ""
                if text:
                    if ttft_ms is None:
                        ttft_ms = _ms_since(started)
                    yield ChatDelta(text)
                if part.done:
                    final = part.model_dump()
                    break
                if cancel is not None and cancel.is_set():
                    break
        except Exception as exc:
            raise map_error(exc, host=self.host, model=model) from exc
        finally:
            close_stream(stream)  # closes the HTTP response, which makes Ollama stop generating
        if final is not None:
            yield stats_from_final(final, ttft_ms=ttft_ms, wall_ms=_ms_since(started))
        elif cancel is not None and cancel.is_set():
            yield ChatStats("cancelled", ttft_ms=ttft_ms, total_ms=_ms_since(started))
        else:
            raise EngineError(
                f"Ollama at {self.host} ended the reply from {model} before it was done."
            )

    # -- model management ----------------------------------------------------------------

    def pull(self, model: str) -> Iterator[PullProgress]:
        """Stream /api/pull; closing this generator closes the stream, which cancels the pull."""
        checked_model_name(model)
        try:  # lazy: the request goes out when the stream is first read
            stream = self._client.pull(model, stream=True)
        except Exception as exc:
            raise map_error(exc, host=self.host, model=model) from exc
        try:
            for part in stream:
                yield PullProgress(
                    status=part.status or "",
                    digest=part.digest or "",
                    total_bytes=part.total,
                    completed_bytes=part.completed,
                )
        except Exception as exc:
            text = str(getattr(exc, "error", ""))
            if _is_response_error(exc) and _has_marker(text, PULL_NOT_FOUND_MARKERS):
                message = f"'{model}' is not in the Ollama library ({text})."
                raise ModelNotFound(model, message) from exc
            raise map_error(exc, host=self.host, model=model) from exc
        finally:
            close_stream(stream)

    def delete(self, model: str) -> None:
        checked_model_name(model)
        self._call(model, self._client.delete, model)

    def load(self, model: str, num_ctx: int) -> None:
        """An empty /api/generate loads the model with this context size (default keep_alive)."""
        checked_model_name(model)
        checked_num_ctx(num_ctx)
        self._call(model, self._client.generate, model=model, options={"num_ctx": num_ctx})

    def unload(self, model: str) -> None:
        checked_model_name(model)
        self._call(model, self._client.generate, model=model, keep_alive=0)


# -- pure mapping functions (unit tested) --------------------------------------------------


def options_to_ollama(options: ChatOptions) -> dict[str, Any]:
    """The request's `options` object: only the values that are set."""
    values = {
        "temperature": options.temperature,
        "num_ctx": options.num_ctx,
        "num_predict": options.num_predict,
        "seed": options.seed,
        "top_p": options.top_p,
        "stop": list(options.stop) or None,
    }
    return {key: value for key, value in values.items() if value is not None}


def stats_from_final(
    final: Mapping[str, Any], *, ttft_ms: float | None, wall_ms: float
) -> ChatStats:
    """ChatStats from the last (done) chunk; Ollama reports durations in nanoseconds."""
    eval_count = final.get("eval_count")
    eval_ns = final.get("eval_duration")
    total_ns = final.get("total_duration")
    load_ns = final.get("load_duration")
    return ChatStats(
        done_reason=final.get("done_reason") or "stop",
        prompt_tokens=final.get("prompt_eval_count"),
        reply_tokens=eval_count,
        ttft_ms=ttft_ms,
        tokens_per_s=eval_count / eval_ns * 1e9 if eval_count and eval_ns else None,
        total_ms=total_ns / 1e6 if total_ns is not None else wall_ms,
        load_ms=load_ns / 1e6 if load_ns is not None else None,
    )


def map_error(exc: BaseException, *, host: str, model: str | None = None) -> EngineError:
    """Turn what the ollama client or httpx raised into an EngineError a user can read."""
    import httpx
    from ollama import RequestError, ResponseError

    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, ResponseError):
        return error_from_response(str(exc.error), exc.status_code, host=host, model=model)
    if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
        return EngineUnavailable(f"Ollama is not reachable at {host}: {_describe(exc)}")
    if isinstance(exc, httpx.TimeoutException):
        return EngineError(f"Ollama at {host} did not answer in time ({_describe(exc)}).")
    if isinstance(exc, httpx.TransportError):
        return EngineUnavailable(f"Lost the connection to Ollama at {host}: {_describe(exc)}")
    if isinstance(exc, RequestError):
        return EngineError(f"Ollama request was not valid: {exc.error}")
    return EngineError(f"Ollama at {host} failed: {_describe(exc)}")


def error_from_response(
    text: str, status: int, *, host: str, model: str | None = None
) -> EngineError:
    """Classify Ollama's `{"error": text}` (status -1: it came inside a 200 stream)."""
    if _has_marker(text, OOM_MARKERS):
        subject = f" with {model}" if model else ""
        return OutOfMemory(f"Ollama ran out of memory{subject}: {text}")
    if status == 503 or is_busy_message(text):
        return EngineBusy(f"Ollama at {host} is busy: {text}")
    if model and (status == 404 or "not found" in text.lower()):
        return ModelNotFound(
            model, f"Model '{model}' is not installed in Ollama at {host} ({text})."
        )
    if status == -1:
        return EngineError(f"Ollama error: {text}")
    return EngineError(f"Ollama error {status}: {text}")


def parse_tensors(raw: Any) -> tuple[TensorInfo, ...]:
    """Ollama's api.Tensor list ({name, type, shape}); anything malformed gives no tensors."""
    if not isinstance(raw, list):
        return ()
    tensors = []
    for item in raw:
        if not isinstance(item, dict):
            return ()
        name, kind, shape = item.get("name"), item.get("type"), item.get("shape")
        if not (isinstance(name, str) and isinstance(kind, str) and isinstance(shape, list)):
            return ()
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            return ()
        tensors.append(TensorInfo(name, kind.upper(), tuple(shape)))
    return tuple(tensors)


def expiry_iso(expires_at: datetime | None, *, now: datetime | None = None) -> str:
    """ISO 8601 expiry, or "" when Ollama keeps the model forever (keep_alive < 0)."""
    if expires_at is None:
        return ""
    now = now or datetime.now(UTC)
    aware = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    if aware - now > NEVER_EXPIRES_AFTER:
        return ""
    return expires_at.isoformat()


def _is_response_error(exc: BaseException) -> bool:
    from ollama import ResponseError

    return isinstance(exc, ResponseError)


def _has_marker(text: str, markers: Sequence[str]) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in markers)


def _plain_headers() -> dict[str, str]:
    """The headers the ollama client sends, for the requests made without it."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    api_key = os.environ.get("OLLAMA_API_KEY")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
