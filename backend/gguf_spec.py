"""The memory estimator's view of a GGUF file: the engine's ModelSpec plus FFN and SWA facts.

backend.engines.gguf_spec.spec_from_gguf reads the architecture facts every engine needs;
the estimator also needs the FFN widths (compute buffer), whether the output projection is
tied to the token embedding (what is duplicated on the GPU), and which layers use a sliding
window (KV cache). Only the header is read: GGUFReader maps the file and tensor data is never
touched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from backend.engines.base import ModelSpec
from backend.engines.gguf_spec import GGUFError
from backend.engines.gguf_spec import spec_from_gguf as engine_spec_from_gguf
from backend.memory import SWA_PERIODS


def spec_from_gguf(path: Path, *, name: str | None = None) -> ModelSpec:
    """ModelSpec with everything the estimator uses; weights = sum of the tensors' bytes."""
    from gguf import GGUFReader

    spec = engine_spec_from_gguf(Path(path), name=name)
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as exc:  # pragma: no cover - the engine reader failed first
        raise GGUFError(f"{Path(path).name} is not a readable GGUF file: {exc}") from exc
    arch = spec.architecture

    def value(suffix: str) -> Any:
        field = reader.fields.get(f"{arch}.{suffix}")
        return None if field is None else field.contents()

    tensor_names = {t.name for t in reader.tensors}
    return replace(
        spec,
        feed_forward_length=_largest(value("feed_forward_length")),
        expert_feed_forward_length=_largest(value("expert_feed_forward_length")),
        tied_embeddings="output.weight" not in tensor_names,
        sliding_window_layers=_swa_count(
            arch, spec.block_count, spec.sliding_window, value("attention.sliding_window_pattern")
        ),
    )


def _largest(raw: Any) -> int:
    if raw is None:
        return 0
    if isinstance(raw, list):
        return max((int(v) for v in raw), default=0)
    return int(raw)


def _swa_count(arch: str, block_count: int, window: int, pattern: Any) -> int:
    if not window:
        return 0
    if isinstance(pattern, list):  # per-layer flags: true where the layer uses the window
        return sum(1 for flag in pattern if flag)
    period = int(pattern) if pattern else SWA_PERIODS.get(arch, 0)
    return sum(1 for il in range(block_count) if period and il % period < period - 1)
