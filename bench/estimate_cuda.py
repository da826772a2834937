"""Hearth's estimate next to the buffers llama.cpp printed for real CUDA loads (public logs).

Each load in data/cuda_loads.json names the catalog model, file type, context per slot, slots,
KV cache type, flash attention and the layers on the GPU, and the buffers its log printed
(CUDA0 / host model, KV and compute buffers, the output buffer), with the log's URL. The
estimate is placed with the same number of GPU layers; both sides are compared component by
component and in sum over the components the log showed. The baseline is llama.cpp's report.

Run: .venv/bin/python -m bench.estimate_cuda
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.estimate.catalog import load_catalog, spec_for
from backend.estimate.memory import estimate_memory
from backend.estimate.placement import split
from backend.units import MIB

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "data" / "cuda_loads.json"
COMPONENTS = ("gpu_weights", "host_weights", "gpu_kv", "host_kv", "gpu_compute",
              "host_compute", "output")  # fmt: skip
LARGE_MIB = 32.0  # components this big must be within COMPONENT_TARGET
COMPONENT_TARGET = 0.10
TOTAL_TARGET = 0.05


@dataclass(frozen=True)
class LoadResult:
    name: str
    url: str
    architecture: str
    printed: dict[str, float]  # MiB, as the log printed them
    estimated: dict[str, float]  # MiB, every component

    def error(self, component: str) -> float:
        real = self.printed[component]
        return (self.estimated[component] - real) / real if real else 0.0

    @property
    def printed_total(self) -> float:
        return sum(self.printed.values())

    @property
    def estimated_total(self) -> float:
        """The estimate summed over the components the log showed."""
        return sum(self.estimated[c] for c in self.printed)

    @property
    def total_error(self) -> float:
        return (self.estimated_total - self.printed_total) / self.printed_total

    def within_target(self) -> bool:
        large = [c for c, v in self.printed.items() if v >= LARGE_MIB]
        return abs(self.total_error) <= TOTAL_TARGET and all(
            abs(self.error(c)) <= COMPONENT_TARGET for c in large
        )


def load_table(path: Path = TABLE) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["loads"])


def estimate_load(load: dict[str, Any]) -> LoadResult:
    """Hearth's buffers for the load, placed with the log's number of GPU layers."""
    catalog = load_catalog(ROOT / "data" / "catalog.json")
    entry = catalog.find(load["tag"])
    if entry is None:
        raise ValueError(f"{load['tag']} is not in the catalog")
    spec = spec_for(entry, load["quant"])
    estimate = estimate_memory(
        spec,
        num_ctx=load["num_ctx"],
        parallel=load["parallel"],
        kv_cache_type=load["kv_cache_type"],
        flash_attention=load["flash_attention"],
    )
    gpu, host = split(estimate, load["gpu_layers"], gpu_overhead_bytes=0)
    values = {
        "gpu_weights": gpu.weights_bytes, "host_weights": host.weights_bytes,
        "gpu_kv": gpu.kv_cache_bytes, "host_kv": host.kv_cache_bytes,
        "gpu_compute": gpu.compute_bytes, "host_compute": host.compute_bytes,
        "output": host.output_bytes,
    }  # fmt: skip
    return LoadResult(
        name=load["name"],
        url=load["url"],
        architecture=entry.architecture,
        printed={k: float(v) for k, v in load["printed_mib"].items()},
        estimated={k: v / MIB for k, v in values.items()},
    )


def print_table(results: list[LoadResult]) -> None:
    for result in results:
        print(f"{result.name}  <{result.url}>")
        for component in COMPONENTS:
            if component not in result.printed:
                continue
            real, est = result.printed[component], result.estimated[component]
            err = result.error(component)
            print(
                f"  {component:<13} printed {real:>10.2f} MiB  Hearth {est:>10.2f} MiB  {err:+7.1%}"
            )
        print(
            f"  {'sum':<13} printed {result.printed_total:>10.2f} MiB  Hearth "
            f"{result.estimated_total:>10.2f} MiB  {result.total_error:+7.1%}"
        )


def main() -> int:
    results = [estimate_load(load) for load in load_table()]
    print_table(results)
    print()
    worst_total = max(abs(r.total_error) for r in results)
    worst_component = max(
        abs(r.error(c)) for r in results for c, v in r.printed.items() if v >= LARGE_MIB
    )
    print(f"loads: {len(results)}")
    print(f"architectures: {len({r.architecture for r in results})}")
    print(f"total_max_abs_error_pct: {worst_total * 100:.2f}")
    print(f"component_max_abs_error_pct: {worst_component * 100:.2f}")
    ratio = sum(r.estimated_total for r in results) / sum(r.printed_total for r in results)
    print(f"estimate_over_printed_ratio: {ratio:.4f}")
    within = all(r.within_target() for r in results)
    print(f"within_target: {within}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
