"""How close the memory estimate is to what llama.cpp allocates, component by component.

Loads the bundled SmolLM2-135M and tiny random-weight models of other families (written on
the spot with tests/support/tiny_gguf.py) with llama-cpp-python on the CPU, parses the buffer
sizes llama.cpp prints, and compares them with backend.estimate.memory.estimate_memory at several
context sizes and KV cache types. The baseline is llama.cpp's own report.

Run: .venv/bin/python -m bench.estimate_accuracy [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

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

# (KV cache type, flash attention): a quantized V cache needs flash attention in llama.cpp.
KV_MODES = (("f16", False), ("f16", True), ("q8_0", True))
COMPONENTS = ("weights", "kv_cache", "compute", "output", "total")


@dataclass(frozen=True)
class Row:
    model: str
    num_ctx: int
    kv_type: str
    flash_attention: bool
    actual: LlamaCppBuffers
    estimate: LlamaCppBuffers

    def error(self, component: str) -> float:
        actual = getattr(self.actual, f"{component}_bytes")
        estimate = getattr(self.estimate, f"{component}_bytes")
        # llama.cpp prints MiB with 2 decimals: a buffer under 0.5 MiB is compared in bytes
        # only up to that rounding.
        return (estimate - actual) / max(actual, 1)


def model_files(directory: Path) -> dict[str, Path]:
    return {"smollm2-135m": smollm2_path(), **write_tiny_ggufs(directory, ACCURACY_SHAPES)}


def measure_row(name: str, path: Path, num_ctx: int, kv_type: str, fa: bool) -> Row:
    kv_code = {"f16": 1, "q8_0": 8}[kv_type]
    actual = measure_llama_cpp(
        path, n_ctx=num_ctx, flash_attn=fa, type_k=kv_code, type_v=kv_code, swa_full=False
    )
    spec = spec_from_gguf(path, name=name)
    est = estimate_memory(spec, num_ctx=num_ctx, kv_cache_type=kv_type, flash_attention=fa)
    predicted = LlamaCppBuffers(
        weights_bytes=est.weights_bytes,
        kv_cache_bytes=est.kv_cache_bytes,
        compute_bytes=est.compute_bytes,
        output_bytes=est.output_bytes,
    )
    return Row(name, num_ctx, kv_type, fa, actual, predicted)


def context_sizes(path: Path, quick: bool) -> list[int]:
    maximum = spec_from_gguf(path).context_length
    sizes = [2048] if quick else [512, 2048, 8192, maximum]
    return sorted({min(size, maximum) for size in sizes})


def print_table(rows: list[Row]) -> None:
    header = f"{'model':<14} {'ctx':>6} {'kv':>5} {'fa':>3}"
    for component in COMPONENTS:
        header += f" | {component + ' MiB (est/real)':>26} {'err':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        fa = "on" if row.flash_attention else "off"
        line = f"{row.model:<14} {row.num_ctx:>6} {row.kv_type:>5} {fa:>3}"
        for component in COMPONENTS:
            est = getattr(row.estimate, f"{component}_bytes") / MIB
            real = getattr(row.actual, f"{component}_bytes") / MIB
            line += f" | {est:>12.2f} / {real:>11.2f} {row.error(component):>+6.1%}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one context size per model")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in model_files(Path(tmp)).items():
            for num_ctx in context_sizes(path, args.quick):
                for kv_type, fa in KV_MODES:
                    rows.append(measure_row(name, path, num_ctx, kv_type, fa))
    print_table(rows)
    print()
    for component in COMPONENTS:
        worst = max(abs(row.error(component)) for row in rows)
        mean = sum(abs(row.error(component)) for row in rows) / len(rows)
        print(f"{component}_max_abs_error_pct: {worst * 100:.2f}")
        print(f"{component}_mean_abs_error_pct: {mean * 100:.2f}")
    ratio = sum(r.estimate.total_bytes for r in rows) / sum(r.actual.total_bytes for r in rows)
    print(f"configurations: {len(rows)}")
    print(f"total_estimate_over_llama_cpp_ratio: {ratio:.4f}")
    within = all(abs(r.error("total")) <= 0.05 for r in rows) and all(
        abs(r.error(c)) <= 0.10 for r in rows for c in COMPONENTS if _large(r, c)
    )
    print(f"within_target: {within}")
    return 0 if within else 1


def _large(row: Row, component: str) -> bool:
    """Components below 1 MiB are compared only up to llama.cpp's 0.01 MiB rounding."""
    return getattr(row.actual, f"{component}_bytes") >= MIB


if __name__ == "__main__":
    sys.exit(main())
