"""The estimate against real CUDA loads from public logs (data/cuda_loads.json): every row well
formed (its URL, the load's facts, the printed lines its figures come from), every printed
component of 32 MiB or more within 10 %, the printed components' sum within 5 %."""

from __future__ import annotations

import pytest

from bench.estimate_cuda import (
    CASES,
    COMPONENT_TARGET,
    LARGE_MIB,
    TARGET_ARCHITECTURES,
    TARGET_LOADS,
    TOTAL_TARGET,
    estimate_load,
    load_table,
    row_problems,
)

LOADS = load_table()
IDS = [load["name"] for load in LOADS]


@pytest.mark.parametrize("load", LOADS, ids=IDS)
def test_every_row_cites_its_log_and_states_the_load(load: dict) -> None:
    assert row_problems(load) == []


def test_a_row_whose_figure_is_not_in_its_log_is_refused() -> None:
    """The well-formedness check can fail: a figure the log lines do not print is caught."""
    load = dict(LOADS[0])
    load["printed_mib"] = {**load["printed_mib"], "gpu_kv": 1234.56}
    assert any("1234.56" in problem for problem in row_problems(load))
    assert row_problems({**load, "url": "http://example.com"}) != []
    assert row_problems({k: v for k, v in load.items() if k != "note"}) == ["missing note"]


def test_the_rows_name_distinct_logs_and_cover_every_case() -> None:
    assert len({(load["url"], load["num_ctx"], load["parallel"]) for load in LOADS}) == len(LOADS)
    covered = {case for load in LOADS for case in estimate_load(load).cases}
    assert covered == set(CASES), f"no load for {set(CASES) - covered}"


def test_the_table_holds_the_loads_and_architectures_the_issue_asks_for() -> None:
    architectures = {estimate_load(load).architecture for load in LOADS}
    assert len(LOADS) >= TARGET_LOADS, f"{len(LOADS)} loads"
    assert len(architectures) >= TARGET_ARCHITECTURES, f"architectures {sorted(architectures)}"


@pytest.mark.parametrize("load", LOADS, ids=IDS)
def test_estimate_matches_the_printed_buffers(load: dict) -> None:
    result = estimate_load(load)
    if result.miss:  # a known miss stays in the table; it must still be one
        assert not result.within_target(), f"{result.name} is no longer a miss: drop 'miss'"
        return
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


def test_a_partial_offload_splits_the_moe_weights_by_layer() -> None:
    """llama.cpp#13729: 30 of 48 blocks on CUDA0; the rest, the embedding and output at home."""
    [load] = [row for row in LOADS if "13729" in row["url"]]
    result = estimate_load(load)
    gpu, host = result.estimated["gpu_weights"], result.estimated["host_weights"]
    assert 0.55 < gpu / (gpu + host) < 0.65  # 30/48 of the blocks' bytes, less the host parts
    full = estimate_load({**load, "gpu_layers": 49})
    assert full.estimated["host_weights"] < host / 10  # only the token embedding stays home
