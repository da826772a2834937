"""Admission decisions: a table of policies over fake machines, reservations, suggestions."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from backend.admission import LoadRequest, Machine, decide
from backend.admission.reservations import Reservations
from backend.admission.settings import POLICIES, AdmissionError, AdmissionSettings
from backend.engines.base import LoadedModel
from backend.estimate.catalog import load_catalog, spec_for
from backend.hardware.nvml import GpuProcess
from backend.units import format_size

GIB = 1024**3
MIB = 1024**2
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.json")
SIZE = re.compile(r"\d+(\.\d)? (GiB|MiB)")


def request(tag: str = "llama3.1:8b", num_ctx: int = 4096, quant: str | None = None, kv="f16"):
    entry = CATALOG.find(tag)
    assert entry is not None
    option = entry.quant(quant)
    others = tuple(spec_for(entry, q.quant) for q in entry.quants if q != option)
    model = option.tag if quant else tag
    return LoadRequest(model, spec_for(entry, option.quant), num_ctx, kv, others)


def gpu_box(free_gib: float, ram_free_gib: float = 48, total_gib: float = 24, **kw) -> Machine:
    return Machine(
        free_vram_bytes=int(free_gib * GIB),
        total_vram_bytes=int(total_gib * GIB),
        free_ram_bytes=int(ram_free_gib * GIB),
        total_ram_bytes=64 * GIB,
        gpu_bandwidth_gbps=1000.0,
        **kw,
    )


def cpu_box(ram_free_gib: float) -> Machine:
    return Machine(0, 0, int(ram_free_gib * GIB), 64 * GIB)


MACHINES = {
    "fits": gpu_box(22),
    "partial": gpu_box(3),
    "cpu only": cpu_box(48),
    "not at all": cpu_box(2),
}
# policy -> expected verdict for each machine above (llama3.1:8b Q4_K_M at 4096 tokens)
TABLE = {
    "strict": {"fits": "admit", "partial": "refuse", "cpu only": "refuse", "not at all": "refuse"},
    "balanced": {"fits": "admit", "partial": "warn", "cpu only": "warn", "not at all": "refuse"},
    "relaxed": {"fits": "admit", "partial": "admit", "cpu only": "admit", "not at all": "refuse"},
    "off": {"fits": "admit", "partial": "admit", "cpu only": "admit", "not at all": "warn"},
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("machine", list(MACHINES))
def test_decision_table(policy: str, machine: str) -> None:
    decision = decide(request(), MACHINES[machine], [], [], AdmissionSettings(policy=policy))
    assert decision.verdict == TABLE[policy][machine], decision.message()
    assert decision.admitted == (TABLE[policy][machine] != "refuse")


def test_placement_matches_the_machine() -> None:
    settings = AdmissionSettings()
    assert decide(request(), MACHINES["fits"], [], [], settings).placement.verdict == (
        "full GPU offload"
    )
    assert decide(request(), MACHINES["partial"], [], [], settings).placement.verdict == (
        "partial offload"
    )
    assert decide(request(), MACHINES["cpu only"], [], [], settings).placement.verdict == "CPU only"


def test_partial_offload_warning_gives_the_expected_speed() -> None:
    decision = decide(request(), MACHINES["partial"], [], [], AdmissionSettings(policy="balanced"))
    assert decision.tokens_per_s_bound is not None
    assert any(f"{decision.tokens_per_s_bound:.1f} tokens/s" in r for r in decision.reasons)


def test_the_brief_of_a_warning_is_its_verdict_and_why_and_a_refusal_keeps_its_numbers() -> None:
    """What the chat tab shows: two lines for a load that goes ahead, every number otherwise."""
    balanced = AdmissionSettings(policy="balanced")
    warned = decide(request(), MACHINES["cpu only"], [], [], balanced)
    assert warned.brief().splitlines() == [
        "Admitted with a warning: llama3.1:8b at num_ctx 4096.",
        warned.summary,
    ]
    assert warned.summary.startswith("It runs on the CPU only") and "tokens/s" in warned.summary
    assert len(warned.message().splitlines()) > 2
    refused = decide(request(), MACHINES["not at all"], [], [], balanced)
    assert refused.brief() == refused.message()
    loaded = [LoadedModel("qwen2.5:14b", 12 * GIB, 12 * GIB, 4096, "2030-01-01T00:00:00+00:00")]
    evicting = decide(request(num_ctx=32768), gpu_box(6), loaded, [], AdmissionSettings("strict"))
    assert evicting.brief().splitlines()[2] == "To make room the engine would unload qwen2.5:14b."


def test_refusal_says_what_it_needs_and_what_is_free() -> None:
    decision = decide(request(), MACHINES["not at all"], [], [], AdmissionSettings(margin=256))
    text = decision.message()
    assert decision.verdict == "refuse"
    assert f"Needs {format_size(decision.estimate.total_bytes)}" in text
    assert format_size(2 * GIB - 256 * MIB) in text  # free RAM after the 256 MiB margin
    assert "RAM in use: 62.0 GiB of 64.0 GiB" in text
    assert all(SIZE.search(r) for r in decision.reasons if r.startswith(("Needs", "Available")))


def test_refusal_names_the_other_process_holding_the_gpu() -> None:
    blender = GpuProcess(4242, "blender", 21 * GIB)
    machine = gpu_box(2, ram_free_gib=3, gpu_processes=(blender,))
    decision = decide(request(), machine, [], [], AdmissionSettings(policy="balanced"))
    assert decision.verdict == "refuse"
    usage = next(r for r in decision.reasons if r.startswith("GPU memory in use"))
    assert "blender (pid 4242) 21.0 GiB" in usage
    assert "22.0 GiB of 24.0 GiB" in usage


def test_ollama_runner_process_is_not_counted_as_a_stranger() -> None:
    loaded = [LoadedModel("qwen2.5:14b", 10 * GIB, 10 * GIB, 4096, "2030-01-01T00:00:00+00:00")]
    runner = GpuProcess(99, "ollama", 10 * GIB)
    machine = gpu_box(1, ram_free_gib=1, gpu_processes=(runner,))
    decision = decide(request(), machine, loaded, [], AdmissionSettings(policy="strict"))
    usage = next(r for r in decision.reasons if r.startswith("GPU memory in use"))
    assert "qwen2.5:14b 10.0 GiB (loaded in Ollama)" in usage
    assert "ollama (pid" not in usage


def test_an_idle_loaded_model_is_evicted_with_a_warning() -> None:
    loaded = [LoadedModel("qwen2.5:14b", 12 * GIB, 12 * GIB, 4096, "2030-01-01T00:00:00+00:00")]
    machine = gpu_box(6)  # 12 GiB held by the loaded model, 6 by others
    decision = decide(request(num_ctx=32768), machine, loaded, [], AdmissionSettings("strict"))
    assert decision.verdict == "warn"
    assert decision.evicts == ("qwen2.5:14b",)
    assert any("Ollama would unload qwen2.5:14b" in r for r in decision.reasons)
    unload = [s for s in decision.suggestions if s.unload]
    assert [s.unload for s in unload] == [("qwen2.5:14b",)]
    assert unload[0].verdict == "admit" and unload[0].placement_verdict == "full GPU offload"


def test_already_loaded_at_the_same_context_is_admitted() -> None:
    loaded = [LoadedModel("llama3.1:8b", 6 * GIB, 6 * GIB, 4096, "")]
    decision = decide(request(), cpu_box(0.1), loaded, [], AdmissionSettings("strict"))
    assert decision.verdict == "admit" and decision.already_loaded


def test_reload_at_another_context_counts_its_own_memory_as_freed() -> None:
    loaded = [LoadedModel("llama3.1:8b", 6 * GIB, 6 * GIB, 2048, "")]
    alone = decide(request(), gpu_box(1), [], [], AdmissionSettings("strict"))
    reload = decide(request(), gpu_box(1), loaded, [], AdmissionSettings("strict"))
    assert alone.verdict == "refuse"
    assert reload.verdict == "admit" and not reload.already_loaded


def test_context_beyond_training_is_capped() -> None:
    decision = decide(request("llama3:8b", 131072), gpu_box(22), [], [], AdmissionSettings())
    assert decision.num_ctx == 8192
    assert any("capped" in r and "8192" in r for r in decision.reasons)


def test_margin_in_percent_of_the_device() -> None:
    # ~5.6 GiB model on a 24 GiB card with 7 GiB free: fits, but not with 10 % (2.4 GiB) kept
    plain = decide(request(), gpu_box(7), [], [], AdmissionSettings("strict", margin=0))
    kept = AdmissionSettings("strict", margin=10, margin_unit="%")
    with_margin = decide(request(), gpu_box(7), [], [], kept)
    assert plain.verdict == "admit"
    assert with_margin.verdict == "refuse"
    assert with_margin.free_vram_bytes == 7 * GIB - int(24 * GIB * 0.10)


@pytest.mark.parametrize(
    ("field", "value"), [("policy", "yolo"), ("margin_unit", "GB"), ("kv_cache_type", "q2")]
)
def test_bad_settings_are_refused_with_the_value(field: str, value: str) -> None:
    with pytest.raises(AdmissionError, match=value):
        AdmissionSettings(**{field: value})


def test_margin_out_of_range_is_refused() -> None:
    with pytest.raises(AdmissionError, match="80"):
        AdmissionSettings(margin=80, margin_unit="%")


def test_two_concurrent_loads_cannot_share_the_same_free_memory() -> None:
    reservations = Reservations()
    machine = gpu_box(8)  # room for one ~5.6 GiB model, not two
    settings = AdmissionSettings("strict")
    barrier = threading.Barrier(2)
    results = []

    def load(name: str) -> None:
        asked = replace(request(), model=name)
        barrier.wait()
        results.append(
            reservations.admit(name, lambda held: decide(asked, machine, [], held, settings))
        )

    threads = [threading.Thread(target=load, args=(n,)) for n in ("a:1", "b:1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdicts = sorted(decision.verdict for decision, _ in results)
    assert verdicts == ["admit", "refuse"]
    refused = next(d for d, _ in results if d.verdict == "refuse")
    assert any("reserved for 1 load(s) in flight" in r for r in refused.reasons)
    assert len(reservations.held()) == 1
    held = reservations.held()[0]
    assert held.vram_bytes == next(d for d, _ in results if d.admitted).placement.vram_bytes
    reservations.release(next(r for _, r in results if r is not None))
    assert reservations.held() == ()


def test_forced_reservation_is_held_even_when_refused() -> None:
    reservations = Reservations()
    decision, held = reservations.admit(
        "x", lambda r: decide(request(), cpu_box(1), [], r, AdmissionSettings()), force=True
    )
    assert decision.verdict == "refuse" and held is not None


# -- suggestions -------------------------------------------------------------------------------


def test_smaller_quant_suggestion_is_the_largest_that_fits() -> None:
    asked = request("llama3.1:70b", quant="Q8_0")
    machine = cpu_box(40)
    settings = AdmissionSettings("relaxed")
    decision = decide(asked, machine, [], [], settings)
    assert decision.verdict == "refuse"
    quant = [s for s in decision.suggestions if s.model != asked.model]
    assert len(quant) == 1
    tip = quant[0]
    assert tip.verdict != "refuse" and tip.total_bytes < decision.estimate.total_bytes
    entry = CATALOG.find("llama3.1:70b")
    sizes = {q.tag: q.size_bytes for q in entry.quants}
    between = [q for q in entry.quants if sizes[tip.model] < q.size_bytes < sizes[asked.model]]
    assert between, "the test needs a quant between the tip and the one asked for"
    for option in between:  # each larger than the tip is refused too
        alt = replace(asked, model=option.tag, spec=spec_for(entry, option.quant))
        assert decide(alt, machine, [], [], settings).verdict == "refuse"


def test_shorter_context_suggestion_fits_and_double_does_not() -> None:
    settings = AdmissionSettings("strict")
    machine = gpu_box(7)
    decision = decide(request(num_ctx=65536), machine, [], [], settings)
    assert decision.verdict == "refuse"
    ctx = next(s for s in decision.suggestions if s.num_ctx != decision.num_ctx)
    assert ctx.num_ctx < 65536 and ctx.verdict == "admit"
    assert f"num_ctx {ctx.num_ctx} instead of 65536" in ctx.label
    assert decide(request(num_ctx=ctx.num_ctx), machine, [], [], settings).verdict == "admit"
    assert decide(request(num_ctx=ctx.num_ctx * 2), machine, [], [], settings).verdict == "refuse"


def test_q8_kv_cache_suggestion_when_it_makes_the_difference() -> None:
    decision = decide(request(num_ctx=32768), gpu_box(10.5), [], [], AdmissionSettings("strict"))
    assert decision.verdict == "refuse"
    kv = [s for s in decision.suggestions if s.kv_cache_type == "q8_0"]
    assert len(kv) == 1
    assert kv[0].verdict == "admit" and kv[0].total_bytes < decision.estimate.total_bytes
    assert "OLLAMA_KV_CACHE_TYPE=q8_0" in kv[0].label


def test_nothing_fits_says_so_with_the_smallest_quant() -> None:
    asked = request("llama3.1:70b", quant="F16")
    decision = decide(asked, cpu_box(10), [], [], AdmissionSettings())
    assert decision.verdict == "refuse" and decision.suggestions == ()
    smallest = min(CATALOG.find("llama3.1:70b").quants, key=lambda q: q.size_bytes)
    assert any("Nothing smaller" in r and smallest.tag in r for r in decision.reasons)


def test_every_suggestion_carries_its_own_estimate() -> None:
    loaded = [LoadedModel("qwen2.5:14b", 9 * GIB, 9 * GIB, 4096, "")]
    decision = decide(request(num_ctx=32768), gpu_box(3), loaded, [], AdmissionSettings("strict"))
    assert decision.suggestions
    for tip in decision.suggestions:
        assert tip.total_bytes > 0 and tip.vram_bytes + tip.ram_bytes >= tip.total_bytes // 2
        assert SIZE.search(tip.describe())
        assert tip.verdict in ("admit", "warn")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"num_parallel": 0}, "OLLAMA_NUM_PARALLEL"),
        ({"num_parallel": 2.5}, "OLLAMA_NUM_PARALLEL"),
        ({"num_parallel": True}, "OLLAMA_NUM_PARALLEL"),
        ({"context_length": -1}, "OLLAMA_CONTEXT_LENGTH"),
        ({"flash_attention": "1"}, "OLLAMA_FLASH_ATTENTION"),
        ({"kv_cache_type": "q4_0"}, "needs flash attention"),
    ],
)
def test_engine_settings_are_validated_by_their_variable_name(changes, named) -> None:
    with pytest.raises(AdmissionError, match=named):
        AdmissionSettings(**changes)


def test_parallel_slots_size_kv_and_compute_on_every_slot() -> None:
    one = decide(request(), gpu_box(24), [], [], AdmissionSettings())
    four = decide(replace(request(), parallel=4), gpu_box(24), [], [], AdmissionSettings())
    assert four.estimate.kv_cache_bytes == 4 * one.estimate.kv_cache_bytes
    assert four.estimate.compute_bytes > 2 * one.estimate.compute_bytes  # attention spans 4x cells
    assert four.estimate.output_bytes == 4 * one.estimate.output_bytes
    assert any("x 4 slots" in reason for reason in four.reasons)
