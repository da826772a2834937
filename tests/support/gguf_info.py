"""Test support: a GGUF file's metadata in the shape Ollama's /api/show reports as model_info."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.estimate.gguf_spec import FILE_TYPES

# Ollama leaves these out of model_info, and empties arrays longer than this unless verbose.
_DROPPED_KEYS = ("general.name", "tokenizer.chat_template")
_MAX_ARRAY = 5


@dataclass(frozen=True)
class GGUFFacts:
    model_info: dict[str, Any]
    parameter_count: int
    quantization: str  # e.g. "Q4_1", as Ollama's details.quantization_level
    file_size_bytes: int
    kv_bytes_per_token: int  # f16 K and V over every layer
    verbose_model_info: dict[str, Any] | None = None  # arrays in full, as verbose=true sends
    tensors: tuple[dict[str, Any], ...] = ()  # [{name, type, shape}] as verbose=true sends

    @property
    def architecture(self) -> str:
        return str(self.model_info["general.architecture"])

    @property
    def parameter_size(self) -> str:
        return human_number(self.parameter_count)


def read_gguf_facts(path: Path) -> GGUFFacts:
    """Read the header once (about 2 s for the bundled model: the tokenizer arrays are large)."""
    import numpy as np
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(path)
    info: dict[str, Any] = {}
    verbose: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in _DROPPED_KEYS:
            continue
        value = field.contents()
        if field.types[0] == GGUFValueType.FLOAT32:
            value = float(str(np.float32(value)))  # Go prints a float32 in its shortest form
        verbose[key] = value
        long_array = field.types[0] == GGUFValueType.ARRAY and len(field.data) > _MAX_ARRAY
        info[key] = [] if long_array else value
    parameters = sum(int(t.n_elements) for t in reader.tensors)
    info["general.parameter_count"] = verbose["general.parameter_count"] = parameters
    # Ollama's api.Tensor: the ggml type's name and the shape ne0 first, in file order
    tensors = tuple(
        {"name": t.name, "type": t.tensor_type.name, "shape": [int(d) for d in t.shape]}
        for t in reader.tensors
    )
    return GGUFFacts(
        model_info=dict(sorted(info.items())),  # Go writes map keys sorted
        parameter_count=parameters,
        quantization=FILE_TYPES.get(int(info.get("general.file_type", -1)), "unknown"),
        file_size_bytes=path.stat().st_size,
        kv_bytes_per_token=kv_bytes_per_token(info),
        verbose_model_info=dict(sorted(verbose.items())),
        tensors=tensors,
    )


def kv_bytes_per_token(info: dict[str, Any]) -> int:
    arch = info["general.architecture"]
    embedding = int(info[f"{arch}.embedding_length"])
    heads = int(info[f"{arch}.attention.head_count"])
    kv_heads = int(info.get(f"{arch}.attention.head_count_kv", heads))
    key_length = int(info.get(f"{arch}.attention.key_length", embedding // heads))
    value_length = int(info.get(f"{arch}.attention.value_length", embedding // heads))
    return int(info[f"{arch}.block_count"]) * (key_length + value_length) * kv_heads * 2


def human_number(count: int) -> str:
    """Ollama's format.HumanNumber: 134515008 -> "134.52M", 8030261248 -> "8.0B"."""
    for limit, unit, decimals in ((10**9, "B", 1), (10**6, "M", 2), (10**3, "K", 0)):
        if count >= limit:
            number = count / limit
            if number == int(number):
                return f"{int(number)}{unit}"
            return f"{number:.{decimals}f}{unit}"
    return str(count)
