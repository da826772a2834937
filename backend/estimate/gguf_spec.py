"""Read a GGUF header (metadata and tensor table, not the weights) into a ModelSpec."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from backend.estimate.model_info import spec_from_model_info
from backend.estimate.spec import ModelFactsError, ModelFileMissing, ModelSpec, TensorInfo

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


class GGUFError(ModelFactsError):
    """The file is not a GGUF model this app can read."""


def read_gguf_metadata(path: Path) -> tuple[dict[str, Any], int, int, tuple[TensorInfo, ...]]:
    """Metadata (vocabulary arrays as their length), tensor bytes, parameters, the tensors."""
    from gguf import GGUFReader

    if not path.is_file():
        raise ModelFileMissing(f"GGUF file not found: {path}")
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
    tensors = tuple(
        TensorInfo(t.name, t.tensor_type.name, tuple(int(d) for d in t.shape))
        for t in reader.tensors
    )
    return metadata, tensor_bytes, parameters, tensors


def spec_from_gguf(path: Path, *, name: str | None = None) -> ModelSpec:
    """ModelSpec from a GGUF file's header; weights size is the sum of its tensors."""
    metadata, tensor_bytes, parameters, tensors = read_gguf_metadata(path)
    tensor_names = {t.name for t in tensors}
    try:
        spec = spec_from_model_info(
            name or path.stem,
            metadata
            | {"general.parameter_count": metadata.get("general.parameter_count") or parameters},
            quantization=FILE_TYPES.get(int(metadata.get("general.file_type", -1)), ""),
            file_size_bytes=tensor_bytes,
            tied_embeddings="output.weight" not in tensor_names,
            source=path.name,
        )
    except ModelFactsError as exc:
        raise GGUFError(str(exc)) from exc
    return replace(spec, tensors=tensors)
