"""The estimate against real CUDA loads from public logs (data/cuda_loads.json): every printed
component of 32 MiB or more within 10 %, the printed components' sum within 5 %."""

from __future__ import annotations

import pytest

from bench.estimate_cuda import (
    COMPONENT_TARGET,
    COMPONENTS,
    LARGE_MIB,
    TOTAL_TARGET,
    estimate_load,
    load_table,
)

LOADS = load_table()


def test_every_load_cites_its_log_and_names_a_known_setting() -> None:
    assert LOADS
    for load in LOADS:
        assert load["url"].startswith("https://github.com/"), load["name"]
        assert set(load["printed_mib"]) <= set(COMPONENTS), load["name"]
        assert load["kv_cache_type"] in ("f16", "q8_0", "q4_0")


@pytest.mark.parametrize("load", LOADS, ids=[load["name"] for load in LOADS])
def test_estimate_matches_the_printed_buffers(load: dict) -> None:
    result = estimate_load(load)
    for component, printed in result.printed.items():
        if printed >= LARGE_MIB:
            assert abs(result.error(component)) <= COMPONENT_TARGET, (
                f"{component}: Hearth {result.estimated[component]:.2f} MiB, "
                f"printed {printed:.2f} MiB"
            )
    assert abs(result.total_error) <= TOTAL_TARGET


def test_slots_share_one_graph_as_ollama_runs_them() -> None:
    """12 x 2048 sizes KV and compute on 24576 cells (ollama#4139), not on 2048."""
    [load] = [row for row in LOADS if row["parallel"] == 12]
    one_slot = estimate_load({**load, "parallel": 1, "printed_mib": {"gpu_compute": 1.0}})
    twelve = estimate_load(load)
    assert twelve.estimated["gpu_kv"] + twelve.estimated["host_kv"] == 3072
    assert twelve.estimated["gpu_compute"] > 4 * one_slot.estimated["gpu_compute"]
