"""The Engine protocol every inference backend implements, its value types and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


class EngineError(Exception):
    """An engine failed; the message is a sentence a user can read."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached (server down, library missing)."""


class ModelNotFound(EngineError):
    """The engine does not have the model that was asked for."""

    def __init__(self, model: str, message: str | None = None) -> None:
        super().__init__(message or f"Model '{model}' is not installed on this engine.")
        self.model = model


class OutOfMemory(EngineError):
    """The engine ran out of memory loading or running a model."""


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatOptions:
    temperature: float = 0.7
    num_ctx: int = 2048
    num_predict: int | None = None
    seed: int | None = None
    top_p: float | None = None


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


@dataclass(frozen=True)
class InstalledModel:
    name: str
    size_bytes: int
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    modified_at: str = ""  # ISO 8601


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


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a model file: its GGUF name, ggml type name ("Q4_K") and shape (ne0 first)."""

    name: str
    type: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts the memory estimator needs, from the catalog, /api/show or GGUF."""

    name: str
    architecture: str
    parameter_count: int
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    context_length: int
    key_length: int | None = None  # default: embedding_length // head_count
    value_length: int | None = None
    vocab_size: int | None = None
    expert_count: int = 0
    expert_used_count: int = 0
    head_count_kv_per_layer: tuple[int, ...] = ()  # set when layers differ
    sliding_window: int = 0  # SWA window in tokens, 0 when every layer is global
    sliding_window_layers: int = 0  # how many of block_count layers use the window
    file_size_bytes: int | None = None  # size of the weights as stored
    quantization: str = ""
    feed_forward_length: int = 0  # FFN width (dense layers); 0 when unknown
    expert_feed_forward_length: int = 0  # FFN width of one MoE expert; 0: feed_forward_length
    tied_embeddings: bool = False  # no output.weight: the token embedding doubles as output
    tensors: tuple[TensorInfo, ...] = ()  # the file's real tensors, when the engine told them
    tensor_types: tuple[tuple[str, str], ...] = ()  # (name suffix, type) the recipe must keep
    vision_parameter_count: int = 0  # a vision encoder in the same file (kept at F16)

    @property
    def head_dim_k(self) -> int:
        return self.key_length or self.embedding_length // self.head_count

    @property
    def head_dim_v(self) -> int:
        return self.value_length or self.embedding_length // self.head_count


@runtime_checkable
class Engine(Protocol):
    """What the app needs from an inference backend."""

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

    def pull(self, model: str) -> Iterator[PullProgress]: ...

    def delete(self, model: str) -> None: ...

    def load(self, model: str, num_ctx: int) -> None: ...

    def unload(self, model: str) -> None: ...
