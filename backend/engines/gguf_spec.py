"""Read a GGUF header (metadata and tensor table, not the weights) into a ModelSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.engines.base import ModelNotFound, ModelSpec

# general.file_type -> llama.cpp's name for the quantization (llama_ftype in llama.h).
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


class GGUFError(ValueError):
    """The file is not a GGUF model this app can read."""


def read_gguf_metadata(path: Path) -> tuple[dict[str, Any], int, int]:
    """Metadata (tokenizer arrays left out), total tensor bytes and total parameter count."""
    from gguf import GGUFReader

    if not path.is_file():
        raise ModelNotFound(str(path), f"GGUF file not found: {path}")
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise GGUFError(f"{path.name} is not a readable GGUF file: {exc}") from exc
    metadata: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and len(field.data) > 1:
            metadata[key] = len(field.data)  # keep the length of vocab arrays, not the contents
            continue
        metadata[key] = field.contents()
    tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    parameters = sum(int(t.n_elements) for t in reader.tensors)
    return metadata, tensor_bytes, parameters


def spec_from_gguf(path: Path, *, name: str | None = None) -> ModelSpec:
    """ModelSpec from a GGUF file's header; weights size is the sum of its tensors."""
    metadata, tensor_bytes, parameters = read_gguf_metadata(path)
    arch = metadata.get("general.architecture")
    if not arch:
        raise GGUFError(f"{path.name} has no general.architecture key")

    def key(suffix: str, default: Any = None) -> Any:
        return metadata.get(f"{arch}.{suffix}", default)

    try:
        head_count = _scalar(key("attention.head_count"))
        kv = key("attention.head_count_kv", head_count)
        per_layer = tuple(int(v) for v in kv) if isinstance(kv, list) else ()
        return ModelSpec(
            name=name or path.stem,
            architecture=str(arch),
            parameter_count=int(metadata.get("general.parameter_count") or parameters),
            block_count=int(key("block_count")),
            embedding_length=int(key("embedding_length")),
            head_count=head_count,
            head_count_kv=max(per_layer) if per_layer else int(kv),
            context_length=int(key("context_length", 2048)),
            key_length=_optional_int(key("attention.key_length")),
            value_length=_optional_int(key("attention.value_length")),
            vocab_size=_optional_int(key("vocab_size", metadata.get("tokenizer.ggml.tokens"))),
            expert_count=int(key("expert_count", 0)),
            expert_used_count=int(key("expert_used_count", 0)),
            head_count_kv_per_layer=per_layer,
            sliding_window=int(key("attention.sliding_window", 0)),
            file_size_bytes=tensor_bytes,
            quantization=FILE_TYPES.get(int(metadata.get("general.file_type", -1)), ""),
        )
    except (TypeError, ValueError) as exc:
        raise GGUFError(f"{path.name} lacks architecture facts for '{arch}': {exc}") from exc


def _scalar(value: Any) -> int:
    if isinstance(value, list):
        return max(int(v) for v in value)
    return int(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
