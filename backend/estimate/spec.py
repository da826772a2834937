"""ModelSpec: the architecture facts the estimator needs, and the error for missing facts."""

from __future__ import annotations

from dataclasses import dataclass


class ModelFactsError(ValueError):
    """A model's file or metadata lacks a fact the estimator needs; the message says which."""


class ModelFileMissing(ModelFactsError):
    """The model file to read facts from does not exist."""


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
