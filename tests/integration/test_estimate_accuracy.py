"""The estimate matches what llama.cpp allocates: total within 5 %, each buffer within 10 %.

A few configurations of the bundled SmolLM2 (llama) and tiny random-weight models of other
families; bench/estimate_accuracy.py runs the full sweep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.engines.base import ModelSpec
from backend.estimate.gguf_spec import spec_from_gguf
from backend.estimate.memory import estimate_memory
from backend.units import MIB
from tests.support.tiny_gguf import (
    ACCURACY_SHAPES,
    LlamaCppBuffers,
    measure_llama_cpp,
    smollm2_path,
    write_tiny_ggufs,
)

# Subprocesses or llama.cpp: out of the fast loop (CONTRIBUTING.md).
pytestmark = pytest.mark.slow

KV_CODES = {"f16": 1, "q8_0": 8}  # ggml_type values llama-cpp-python takes for type_k / type_v


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ModelSpec]]:
    """Each model's file and the spec read from its header (read once per module)."""
    names = ("tiny-qwen2", "tiny-gemma3", "tiny-mixtral")
    paths = write_tiny_ggufs(
        tmp_path_factory.mktemp("tiny-gguf"), {n: ACCURACY_SHAPES[n] for n in names}
    )
    paths["smollm2-135m"] = smollm2_path()
    return {name: (path, spec_from_gguf(path)) for name, path in paths.items()}


CASES = [
    ("smollm2-135m", 2048, "f16", False),
    ("smollm2-135m", 8192, "q8_0", True),
    ("tiny-qwen2", 8192, "f16", False),  # the attention scores dominate the graph
    ("tiny-gemma3", 4096, "q8_0", True),  # sliding-window KV cache, flash attention
    ("tiny-mixtral", 512, "f16", False),  # the experts' activations dominate the graph
]


@pytest.mark.parametrize(("model", "num_ctx", "kv_type", "flash_attention"), CASES)
def test_estimate_matches_llama_cpp(
    models: dict[str, tuple[Path, ModelSpec]],
    model: str,
    num_ctx: int,
    kv_type: str,
    flash_attention: bool,
) -> None:
    path, spec = models[model]
    code = KV_CODES[kv_type]
    actual = measure_llama_cpp(
        path, n_ctx=num_ctx, flash_attn=flash_attention, type_k=code, type_v=code, swa_full=False
    )
    estimate = estimate_memory(
        spec,
        num_ctx=num_ctx,
        kv_cache_type=kv_type,
        flash_attention=flash_attention,
    )
    predicted = LlamaCppBuffers(
        estimate.weights_bytes,
        estimate.kv_cache_bytes,
        estimate.compute_bytes,
        estimate.output_bytes,
    )
    for component in ("weights", "kv_cache", "compute"):
        real = getattr(actual, f"{component}_bytes")
        guess = getattr(predicted, f"{component}_bytes")
        assert abs(guess - real) <= 0.10 * real, (
            f"{component}: estimated {guess / MIB:.2f} MiB, llama.cpp {real / MIB:.2f} MiB"
        )
    # the output buffer is printed with 0.01 MiB resolution
    assert abs(predicted.output_bytes - actual.output_bytes) <= 0.01 * MIB
    assert abs(predicted.total_bytes - actual.total_bytes) <= 0.05 * actual.total_bytes
