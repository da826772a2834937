"""The Engine protocol every inference backend implements, its value types and errors."""

from __future__ import annotations

import re
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from backend.estimate.spec import ModelSpec

Role = Literal["system", "user", "assistant"]

# The defaults of a chat turn's options: the one home for them (the Chat tab, /chat and the
# stored-options reader all read these). The temperature is low enough that small models (the
# bundled 135M one) stay on topic: SmolLM2 answered "capital of France?" with Paris 7 times in
# 8 seeds at 0.3, 4 in 8 at 0.7.
DEFAULT_TEMPERATURE = 0.3
DEFAULT_NUM_CTX = 4096
# No engine is asked for a larger context than this, whatever the model claims: a KV cache of
# 128k tokens is already tens of GiB for a mid-sized model, and admission judges it first.
MAX_NUM_CTX = 131072
# Longer than any Ollama name (host, namespace, model and tag together) or GGUF file stem.
MAX_MODEL_NAME_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_DRIVE = re.compile(r"[A-Za-z]:[/\\]")  # C:\models\x.gguf


class EngineError(Exception):
    """An engine failed; the message is a sentence a user can read."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached (server down, library missing)."""


class EngineBusy(EngineUnavailable):
    """The engine refused the request because its own queue is full; trying later may work.

    Ollama answers HTTP 503 "server busy, please try again.  maximum pending requests
    exceeded" when OLLAMA_MAX_QUEUE requests already wait; backend.engines.retry retries it.
    """


class ModelNotFound(EngineError):
    """The engine does not have the model that was asked for."""

    def __init__(self, model: str, message: str | None = None) -> None:
        super().__init__(message or f"Model '{model}' is not installed on this engine.")
        self.model = model


class OutOfMemory(EngineError):
    """The engine ran out of memory loading or running a model."""


class ModelFactsUnavailable(EngineError):
    """The engine serves the model but does not tell its architecture (show() cannot answer)."""


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


def quote_value(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short (messages echo caller input)."""
    if isinstance(value, list | tuple | dict | set):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"a {value.bit_length()}-bit number" if isinstance(value, int) else "?"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checked_model_name(name: object) -> str:
    """`name` when it can be a model name; else ModelNotFound saying why."""
    if problem := model_name_problem(name):
        shown = quote_value(name)
        raise ModelNotFound(shown, f"{shown} is not a model name: {problem}.")
    return name  # type: ignore[return-value]


def checked_num_ctx(num_ctx: object) -> int:
    """A context length an engine may be asked for: a whole number from 1 to MAX_NUM_CTX."""
    if isinstance(num_ctx, bool) or not isinstance(num_ctx, int):
        raise EngineError(f"The context length must be a whole number, got {quote_value(num_ctx)}.")
    if not 1 <= num_ctx <= MAX_NUM_CTX:
        raise EngineError(
            f"The context length must be from 1 to {MAX_NUM_CTX} tokens, "
            f"got {quote_value(num_ctx)}."
        )
    return num_ctx


def model_name_problem(name: object) -> str:
    """Why `name` cannot be a model name ("" when it can): names come from an engine's list.

    One rule for every engine and caller: text of bounded length, no control characters, and
    nothing that reads as a file path (Ollama names may hold "/" between namespace parts, but
    never start with one, hold "\\" or step up with "..").
    """
    if not isinstance(name, str):
        return f"a model name is text, not {type(name).__name__}"
    if not name.strip():
        return "no model was named"
    if len(name) > MAX_MODEL_NAME_CHARS:
        return f"it is {len(name):,} characters long; names have at most {MAX_MODEL_NAME_CHARS}"
    if _CONTROL.search(name):
        return "it contains control or invalid characters"
    steps_around = bool({".", ".."} & set(name.split("/")))
    if name.startswith(("/", "~")) or "\\" in name or steps_around or _DRIVE.match(name):
        return "it is a file path; pick a model name from the list"
    return ""


@dataclass(frozen=True)
class ChatOptions:
    temperature: float = DEFAULT_TEMPERATURE
    num_ctx: int = DEFAULT_NUM_CTX
    num_predict: int | None = None
    seed: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()  # the reply ends before the first of these; none is shown


@dataclass(frozen=True)
class ChatDelta:
    """A piece of the reply as it streams."""

    text: str


@dataclass(frozen=True)
class ChatStats:
    """The engine's own metrics for one finished (or stopped) reply."""

    done_reason: str  # "stop", "length", "cancelled", ...
    prompt_tokens: int | None = None
    reply_tokens: int | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    total_ms: float | None = None
    load_ms: float | None = None
    # "engine": the token counts are the engine's own; "hearth": the engine sent none and
    # Hearth counted them itself (see the engine's docs for how).
    counted_by: str = "engine"


@dataclass(frozen=True)
class InstalledModel:
    name: str
    size_bytes: int
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    modified_at: str = ""  # ISO 8601
    digest: str = ""  # the file's content address ("sha256:..."), where the engine says it


@dataclass(frozen=True)
class LoadedModel:
    name: str
    size_bytes: int  # total resident size
    vram_bytes: int  # the part held in GPU memory; < size_bytes means partial offload
    context_length: int | None = None
    expires_at: str = ""  # ISO 8601, "" when it never expires

    @property
    def ram_bytes(self) -> int:
        return max(self.size_bytes - self.vram_bytes, 0)


@dataclass(frozen=True)
class PullProgress:
    status: str
    digest: str = ""
    total_bytes: int | None = None
    completed_bytes: int | None = None


@dataclass(frozen=True)
class EngineStatus:
    name: str  # "ollama" or "embedded"
    reachable: bool
    detail: str  # e.g. "Ollama 0.12.3 at http://127.0.0.1:11434" or the error
    version: str = ""


@runtime_checkable
class ChatEngine(Protocol):
    """What every engine does: say how it is, list its models, describe one, and chat."""

    name: str

    def status(self) -> EngineStatus: ...

    def list_models(self) -> list[InstalledModel]: ...

    def loaded_models(self) -> list[LoadedModel]: ...

    def show(self, model: str) -> ModelSpec: ...

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        """Stream the reply; the last item is always ChatStats (done_reason "cancelled" on stop)."""
        ...


@runtime_checkable
class ModelManager(Protocol):
    """An ability only some engines have (Ollama; the embedded engine's files): manage models.

    OpenAI-compatible servers (vLLM, llama.cpp's server) serve what they were started with.
    """

    def pull(self, model: str) -> Iterator[PullProgress]: ...

    def delete(self, model: str) -> None: ...

    def load(self, model: str, num_ctx: int) -> None: ...

    def unload(self, model: str) -> None: ...


@runtime_checkable
class Engine(ChatEngine, ModelManager, Protocol):
    """An engine that chats and manages its models: what the Models tab's operations need."""


def close_stream(stream: Iterator[object]) -> None:
    """Close a stream that is a generator (closing its HTTP response); others hold nothing."""
    if isinstance(stream, Generator):
        stream.close()


def model_key(name: str) -> str:
    """A model name as engines resolve it: lower case, with ":latest" when it has no tag."""
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def same_model(a: str, b: str) -> bool:
    return model_key(a) == model_key(b)
