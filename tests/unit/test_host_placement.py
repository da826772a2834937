"""Per-host GPU facts as admission's Machine, and placement over hosts: a DCGM exporter (the
protocol double), declared VRAM minus what is loaded, a vLLM server's GPU taken, no facts; how
admission judges a host it knows only the GPU of; spread, pack and a refusal per host."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.admission import AdmissionSettings, LoadRequest, Machine, decide
from backend.admission.reservations import Reservations
from backend.admission.settings import AdmissionError
from backend.engines.base import LoadedModel
from backend.engines.config import EngineSpec, GpuFacts
from backend.engines.host_memory import HostMemory, read_host_memory
from backend.engines.pool_member import member_from_spec
from backend.estimate.catalog import load_catalog, spec_for
from backend.models_admin.catalog_view import catalog_rows
from backend.models_admin.hosts import Host, machine_for
from backend.models_admin.placement import HostDecision, choose, placed, refused
from tests.support import openai_texts as texts
from tests.support.fixtures_openai import DOUBLE_API_KEY
from tests.support.openai_double import OpenAIDouble

GIB = 1024**3
MIB = 1024**2
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.json")
NO_MARGIN = AdmissionSettings(margin=0)


def request(tag: str = "llama3.1:8b", num_ctx: int = 4096) -> LoadRequest:
    entry = CATALOG.find(tag)
    assert entry is not None
    return LoadRequest(tag, spec_for(entry, entry.quant().quant), num_ctx)


def need_gib() -> float:
    """What the default request takes on a GPU with room to spare (GiB)."""
    return decide(request(), remote(200, 200), [], [], NO_MARGIN).placement.vram_bytes / GIB


def remote(free_gib: float, total_gib: float = 80) -> Machine:
    """Another host as admission sees it: its GPU facts, no RAM facts."""
    return Machine(int(free_gib * GIB), int(total_gib * GIB), 0, 0, ram_known=False, facts="test")


def spec(facts: GpuFacts, name: str = "box") -> EngineSpec:
    return EngineSpec(name, "ollama", "http://127.0.0.1:9", gpu_facts=facts)


def host(name: str, machine: Machine) -> Host:
    return Host(name, f"http://{name}:11434", machine, (), False)


# -- the host's memory from its gpu_facts --------------------------------------------------


def test_a_dcgm_exporter_gives_the_host_its_gpus_free_and_total(dcgm_double: OpenAIDouble) -> None:
    memory = read_host_memory(spec(GpuFacts("dcgm", dcgm_url=dcgm_double.url)), [])
    free = (texts.DCGM_GPU0_FREE_MIB + texts.DCGM_GPU1_FREE_MIB) * MIB
    used = (texts.DCGM_GPU0_USED_MIB + texts.DCGM_GPU1_USED_MIB) * MIB
    assert (memory.kind, memory.free_vram_bytes, memory.total_vram_bytes) == (
        "known", free, free + used
    )  # fmt: skip
    assert [g.index for g in memory.gpus] == [0, 1] and "(DCGM)" in memory.describe()
    machine = machine_for(memory, lambda: pytest.fail("a DCGM host is not this machine"))
    assert (machine.free_vram_bytes, machine.ram_known, machine.unknown) == (free, False, "")
    assert dcgm_double.url in machine.facts


def test_a_dcgm_exporter_that_does_not_answer_leaves_the_host_unknown(
    refused_ollama_host: str,
) -> None:
    memory = read_host_memory(spec(GpuFacts("dcgm", dcgm_url=refused_ollama_host)), [])
    assert memory.kind == "unknown" and not memory.known
    assert "not reachable" in memory.source and "declared:<GiB>" in memory.source
    assert machine_for(memory, lambda: pytest.fail("not local")).unknown == memory.source


def test_declared_vram_minus_what_the_engine_reports_loaded() -> None:
    loaded = [LoadedModel("a:1b", 3 * GIB, 2 * GIB), LoadedModel("b:1b", GIB, GIB)]
    memory = read_host_memory(spec(GpuFacts("declared", declared_vram_gib=24)), loaded)
    assert (memory.free_vram_bytes, memory.total_vram_bytes) == (21 * GIB, 24 * GIB)
    assert "24 GiB declared" in memory.source and "3.0 GiB loaded" in memory.source
    full = [LoadedModel("big:70b", 40 * GIB, 30 * GIB)]
    over = read_host_memory(spec(GpuFacts("declared", declared_vram_gib=24)), full)
    assert over.free_vram_bytes == 0


def test_no_gpu_facts_is_unknown_with_the_setting_to_add() -> None:
    memory = read_host_memory(spec(GpuFacts(), name="box9"), [])
    assert memory.kind == "unknown"
    assert "'box9'" in memory.source and "HEARTH_ENGINES" in memory.source
    assert '"gpu_facts": "local"' in memory.source and "declared:<GiB>" in memory.source


def test_local_facts_are_this_machines_nvml() -> None:
    here = Machine(10 * GIB, 24 * GIB, 30 * GIB, 64 * GIB)
    machine = machine_for(HostMemory("box", "local"), lambda: here)
    assert machine.free_vram_bytes == 10 * GIB and machine.ram_known
    assert machine.facts == "this machine's NVML"


def test_a_vllm_server_has_its_gpu_taken_whatever_its_facts_say(vllm_double: OpenAIDouble) -> None:
    declared = GpuFacts("declared", declared_vram_gib=80)
    member = member_from_spec(
        EngineSpec("vllm-box", "openai", f"{vllm_double.url}/v1", DOUBLE_API_KEY, declared)
    )
    try:
        assert member.probe().up
        memory = member.host_memory()
        assert memory.kind == "taken" and "--gpu-memory-utilization" in memory.source
        assert not member.can_manage_models  # never a target of an admin's load
        card = member.card()
        assert "taken by vLLM" in card.gpu_facts and card.server_facts.startswith("vLLM")
    finally:
        member.engine.close()  # type: ignore[attr-defined]


# -- admission on a host by its facts ------------------------------------------------------


def test_a_host_without_gpu_facts_is_refused_by_its_sentence_and_policy_off_only_warns() -> None:
    why = "Engine 'b' has no GPU facts, so Hearth cannot place a load there by numbers: add ..."
    unknown = Machine(0, 0, 0, 0, ram_known=False, unknown=why)
    decision = decide(request("llama3.2:1b"), unknown, [], [], NO_MARGIN)
    assert decision.verdict == "refuse" and why in decision.reasons
    assert not decision.suggestions  # no numbers: nothing smaller can be judged either
    off = decide(request("llama3.2:1b"), unknown, [], [], AdmissionSettings(policy="off"))
    assert off.verdict == "warn"


def test_a_host_whose_ram_is_unknown_takes_only_a_full_gpu_offload() -> None:
    fits = decide(request(), remote(40), [], [], NO_MARGIN)
    assert fits.verdict == "admit" and fits.placement.verdict == "full GPU offload"
    assert any("RAM is not known" in r for r in fits.reasons)
    partial = decide(request(), remote(3), [], [], NO_MARGIN)
    assert partial.verdict == "refuse"
    assert any("only a load that fits entirely in its GPU memory" in r for r in partial.reasons)
    assert not any("RAM in use" in r for r in partial.reasons)  # no RAM numbers to show
    relaxed = decide(request(), remote(3), [], [], AdmissionSettings(policy="relaxed", margin=0))
    assert relaxed.verdict == "refuse"  # relaxed may use RAM; this host has no RAM facts


def test_catalog_badges_on_a_host_without_ram_facts_are_full_gpu_or_will_not_fit() -> None:
    rows = catalog_rows(CATALOG, remote(6), NO_MARGIN, 4096, "f16", set())
    verdicts = {r.fit.verdict for r in rows}
    assert verdicts == {"full GPU offload", "will not fit"}
    unknown = Machine(0, 0, 0, 0, ram_known=False, unknown="why")
    assert {r.fit.verdict for r in catalog_rows(CATALOG, unknown, NO_MARGIN, 4096, "f16", ())} == {
        "will not fit"
    }
    roomier = catalog_rows(CATALOG, remote(40), NO_MARGIN, 4096, "f16", set())
    fit = sum(r.fit.verdict == "full GPU offload" for r in rows)
    assert sum(r.fit.verdict == "full GPU offload" for r in roomier) > fit


# -- placement over hosts -------------------------------------------------------------------


def judged(*hosts: tuple[str, Machine]) -> list[HostDecision]:
    return [
        HostDecision(host(name, machine), decide(request(), machine, [], [], NO_MARGIN))
        for name, machine in hosts
    ]


def test_spread_takes_the_most_headroom_and_pack_the_least_that_admits() -> None:
    hosts = judged(("small", remote(3)), ("mid", remote(12)), ("big", remote(70)))
    spread, pack = choose(hosts, "spread"), choose(hosts, "pack")
    assert spread is not None and spread.host.name == "big"
    assert pack is not None and pack.host.name == "mid"  # small does not admit it
    decision = placed(spread, hosts, "spread")
    assert decision.host == "big" and decision.message().startswith("Admitted: llama3.1:8b")
    assert "on big." in decision.message().splitlines()[0]
    assert "placement spread" in decision.reasons[0] and "[small: refuse" in decision.reasons[0]


def test_a_clean_admit_beats_more_headroom_with_a_warning() -> None:
    idle = LoadedModel("old:70b", 40 * GIB, 40 * GIB, 4096)
    busy = host("busy", remote(2))
    evicting = HostDecision(busy, decide(request(), busy.machine, [idle], [], NO_MARGIN))
    assert evicting.decision.verdict == "warn" and evicting.decision.evicts == ("old:70b",)
    hosts = [evicting, *judged(("free", remote(need_gib() + 1)))]
    assert hosts[0].headroom_bytes > hosts[1].headroom_bytes
    chosen = choose(hosts, "spread")
    assert chosen is not None and chosen.host.name == "free"


def test_a_host_that_has_it_loaded_is_chosen_first() -> None:
    loaded = LoadedModel("llama3.1:8b", 6 * GIB, 6 * GIB, 4096)
    small = host("small", remote(1))
    hosts = [
        HostDecision(small, decide(request(), small.machine, [loaded], [], NO_MARGIN)),
        *judged(("big", remote(70))),
    ]
    chosen = choose(hosts, "spread")
    assert chosen is not None and chosen.host.name == "small" and chosen.decision.already_loaded


def test_no_host_admits_lists_every_host_with_its_numbers() -> None:
    hosts = judged(("a", remote(1)), ("b", remote(3)))
    unknown = Machine(0, 0, 0, 0, ram_known=False, unknown="Engine 'c' has no GPU facts.")
    hosts.append(HostDecision(host("c", unknown), decide(request(), unknown, [], [], NO_MARGIN)))
    assert choose(hosts, "spread") is None and choose(hosts, "pack") is None
    decision = refused(hosts)
    assert decision.verdict == "refuse" and decision.host == "b"  # the closest to fitting
    text = decision.message()
    assert "No host admits it (3 checked)" in text
    assert "a: refuse, 1.0 GiB VRAM available (test), needs" in text
    assert "b: refuse, 3.0 GiB VRAM available" in text
    assert "c: refuse, Engine 'c' has no GPU facts." in text


def test_reservations_are_kept_per_host() -> None:
    reservations = Reservations()
    room = 1.5 * need_gib()  # one load fits, two do not
    hosts = {"a": remote(room), "b": remote(room)}

    def on(name: str):
        def decide_there(held):
            return name, decide(request(), hosts[name], [], held(name), NO_MARGIN)

        return decide_there

    _, first, held_a = reservations.admit_on("llama3.1:8b", on("a"))
    assert first.admitted and held_a is not None and held_a.host == "a"
    _, again, none = reservations.admit_on("llama3.1:8b", on("a"))
    assert again.verdict == "refuse" and none is None  # a's room is promised already
    _, other, held_b = reservations.admit_on("llama3.1:8b", on("b"))
    assert other.admitted and held_b is not None  # b's reservations are its own
    assert reservations.held("a") == (held_a,) and reservations.held("b") == (held_b,)
    assert reservations.held("") == () and len(reservations.held()) == 2
    reservations.release(held_a)
    assert reservations.admit_on("llama3.1:8b", on("a"))[1].admitted


def test_placement_is_a_validated_admission_setting() -> None:
    assert AdmissionSettings().placement == "spread"
    assert AdmissionSettings(placement="pack").placement == "pack"
    for bad in ("scatter", "", None, ["pack"]):
        with pytest.raises(AdmissionError, match="Placement must be one of spread, pack"):
            AdmissionSettings(placement=bad)  # type: ignore[arg-type]
