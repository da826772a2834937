"""ModelService over real HTTP against the Ollama protocol test server, a real SQLite store and
a HardwareMonitor on a fake NVML (the driver is the one faked boundary)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from backend.admission.settings import AdmissionSettings
from backend.auth import CLI, PermissionDenied, User, UserAdmin
from backend.engines.base import EngineUnavailable, ModelNotFound
from backend.engines.ollama import OllamaEngine
from backend.estimate.catalog import load_catalog
from backend.estimate.spec import TensorInfo
from backend.estimate.tensors import tensor_bytes
from backend.hardware.monitor import HardwareMonitor
from backend.hardware.nvml import NvmlProcess, process_name
from backend.models_admin import AdmissionRefused, ModelService
from backend.models_admin.inputs import ModelInputError
from backend.models_admin.load_records import LoadRecords
from backend.models_admin.pull_progress import NotEnoughDisk
from backend.store.database import Store
from tests.support.fakes import FakeGpu, FakeNvml
from tests.support.ollama_server import BUNDLED_NAME, OllamaTestServer

GIB = 1024**3
MIB = 1024**2
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.json")
SMOLLM_360M = "smollm2:360m"


def build(store: Store, engine: OllamaEngine, tmp_path: Path, nvml: FakeNvml) -> ModelService:
    hardware = HardwareMonitor(tmp_path, tmp_path / "models", nvml=nvml)
    return ModelService(store, lambda: engine, hardware, CATALOG)


@pytest.fixture
def admin(users: UserAdmin) -> User:
    return users.add_user(CLI, "root", "root-pass-123", "admin")


@pytest.fixture
def service(store: Store, ollama_engine: OllamaEngine, tmp_path: Path) -> Iterator[ModelService]:
    """A CPU-only box: NVML answers but finds no GPU."""
    yield build(store, ollama_engine, tmp_path, FakeNvml([]))


def audit(store: Store, action: str) -> list[tuple[str, str, str, str]]:
    return [(e.actor, e.target, e.outcome, e.detail) for e in store.list_audit(action=action)]


# -- pull --------------------------------------------------------------------------------------


def test_pull_streams_progress_to_done(service, admin, ollama_server: OllamaTestServer, store):
    updates = list(service.pull(admin, SMOLLM_360M))
    layer_sizes = ollama_server.state.find_tag(SMOLLM_360M).layer_sizes
    fractions = [u.fraction for u in updates if u.fraction is not None]
    completed = [u.completed_bytes for u in updates]
    assert completed == sorted(completed), "downloaded bytes never go back"
    assert sum(1 for f in fractions if 0 < f < 1) >= 5, "the bar moves in steps"
    last = updates[-1]
    assert last.done and last.fraction == 1.0 and last.status == "success"
    assert last.total_bytes == sum(layer_sizes)
    assert [layer.total_bytes for layer in last.layers] == list(layer_sizes)
    assert any(u.bytes_per_s for u in updates), "a speed is reported while downloading"
    assert SMOLLM_360M in ollama_server.installed_names()
    [(actor, target, outcome, detail)] = audit(store, "model.pull")
    assert (actor, target, outcome) == ("root", SMOLLM_360M, "ok")
    assert "5 layer(s)" in detail and "MiB" in detail


def test_cancel_mid_pull_stops_the_download(service, admin, ollama_server, store):
    cancel = threading.Event()
    seen = []
    for update in service.pull(admin, SMOLLM_360M, cancel):
        seen.append(update)
        if (update.fraction or 0) > 0.3:
            cancel.set()
    assert seen[-1].cancelled and not seen[-1].done
    assert ollama_server.wait_until(lambda e: e.pull_disconnects >= 1, timeout_s=10)
    assert SMOLLM_360M not in ollama_server.installed_names()
    assert ollama_server.events.pulls_completed == 0
    [(_, _, outcome, detail)] = audit(store, "model.pull")
    assert outcome == "cancelled" and "cancelled at" in detail


def test_closing_the_pull_stream_cancels_it(service, admin, ollama_server, store):
    stream = service.pull(admin, SMOLLM_360M)
    for _ in range(4):
        next(stream)
    stream.close()
    assert ollama_server.wait_until(lambda e: e.pull_disconnects >= 1, timeout_s=10)
    assert SMOLLM_360M not in ollama_server.installed_names()
    assert audit(store, "model.pull")[0][2] == "cancelled"


def test_pulling_an_unknown_tag_says_so(service, admin, ollama_server, store):
    with pytest.raises(ModelNotFound, match="nosuchmodel:7b"):
        list(service.pull(admin, "nosuchmodel:7b"))
    assert audit(store, "model.pull")[0][2] == "failed"


def test_pull_larger_than_the_free_disk_is_stopped(service, admin, ollama_server, store, tmp_path):
    free = service._hardware.snapshot().disk("models").free_bytes
    ollama_server.add_registry_tag("huge:1t", [free + 10 * GIB, 490])
    with pytest.raises(NotEnoughDisk, match="Not enough disk space to pull huge:1t") as caught:
        list(service.pull(admin, "huge:1t"))
    assert "GiB is free" in str(caught.value)
    assert ollama_server.wait_until(lambda e: e.pull_disconnects >= 1, timeout_s=10)
    assert "huge:1t" not in ollama_server.installed_names()


def test_pull_is_stopped_when_the_manifest_outgrows_the_free_disk(
    store, ollama_engine, ollama_server, admin, tmp_path, monkeypatch
):
    """Not in the catalog, so no early check: the layer totals Ollama reports stop it."""
    import psutil

    free = 3 * GIB
    monkeypatch.setattr(psutil, "disk_usage", lambda _: SimpleNamespace(
        total=100 * GIB, used=100 * GIB - free, free=free))  # fmt: skip
    service = build(store, ollama_engine, tmp_path, FakeNvml([]))
    ollama_server.add_registry_tag("twolayers:9b", [2 * GIB, 3 * GIB // 2])
    seen = []
    with pytest.raises(NotEnoughDisk) as caught:
        for update in service.pull(admin, "twolayers:9b"):
            seen.append(update)
    message = str(caught.value)
    assert "twolayers:9b" in message and "3.5 GiB" in message and "3.0 GiB is free" in message
    assert max(len(u.layers) for u in seen) == 1, "the first layer alone fit; the second stopped it"
    assert ollama_server.wait_until(lambda e: e.pull_disconnects >= 1, timeout_s=10)
    assert "twolayers:9b" not in ollama_server.installed_names()
    assert ollama_server.events.pulls_completed == 0
    [(actor, target, outcome, detail)] = audit(store, "model.pull")
    assert (actor, target, outcome, detail) == ("root", "twolayers:9b", "refused", message)


def test_pull_of_a_catalog_quant_is_checked_before_it_starts(
    store, ollama_engine, ollama_server, admin, tmp_path, monkeypatch
):
    import psutil

    # The disk is the boundary here: 3 GiB free, whatever this machine's disk holds.
    free = 3 * GIB
    monkeypatch.setattr(psutil, "disk_usage", lambda _: SimpleNamespace(
        total=100 * GIB, used=100 * GIB - free, free=free))  # fmt: skip
    service = build(store, ollama_engine, tmp_path, FakeNvml([]))
    too_big = [q for e in CATALOG.entries for q in e.quants if q.size_bytes > free + 256 * MIB]
    with pytest.raises(NotEnoughDisk, match=too_big[0].tag):
        list(service.pull(admin, too_big[0].tag))
    assert ollama_server.events.pull_disconnects == 0, "the pull never started"
    assert audit(store, "model.pull")[0][2] == "refused"


# -- delete, load, unload ------------------------------------------------------------------


def test_delete_removes_the_model(service, admin, ollama_server, store):
    ollama_server.add_model("doomed:1b")
    service.delete(admin, "doomed:1b")
    assert "doomed:1b" not in ollama_server.installed_names()
    assert audit(store, "model.delete")[0][:3] == ("root", "doomed:1b", "ok")
    with pytest.raises(ModelNotFound, match="doomed:1b"):
        service.delete(admin, "doomed:1b")
    assert audit(store, "model.delete")[0][2] == "failed"


def test_load_and_unload_record_the_estimate_next_to_the_actual(
    service, admin, ollama_server, store
):
    result = service.load(admin, BUNDLED_NAME, 2048)
    assert result.decision.admitted and result.decision.placement.verdict == "CPU only"
    [loaded] = service.loaded(admin)
    assert loaded.name == BUNDLED_NAME and loaded.context_length == 2048
    [record] = service.load_records()
    assert record.model == BUNDLED_NAME and record.num_ctx == 2048
    assert record.actual_size_bytes == loaded.size_bytes
    assert record.actual_vram_bytes == loaded.vram_bytes
    assert record.estimate_total_bytes == result.decision.estimate.total_bytes
    assert record.vram_delta_bytes is None  # no GPU on this box
    [(actor, target, outcome, detail)] = audit(store, "model.load")
    assert (actor, target, outcome) == ("root", BUNDLED_NAME, "ok")
    assert "num_ctx 2048" in detail and "estimate" in detail and "actual" in detail
    service.unload(admin, BUNDLED_NAME)
    assert service.loaded(admin) == []
    assert audit(store, "model.unload")[0][:3] == ("root", BUNDLED_NAME, "ok")


def test_unloading_a_model_that_is_not_loaded_says_so(service, admin, store):
    with pytest.raises(ModelInputError, match="is not loaded; there is nothing to unload"):
        service.unload(admin, BUNDLED_NAME)
    assert audit(store, "model.unload")[0][:3] == ("root", BUNDLED_NAME, "refused")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, a: s.unload(a, None), "Pick a model first"),
        (lambda s, a: s.delete(a, ["x"]), "got a list of 1 item"),
        (lambda s, a: s.load(a, "x" * 1_000_000, 512), "1,000,000 characters long"),
        (lambda s, a: s.load(a, BUNDLED_NAME, None), "Context length must be a whole number"),
        (lambda s, a: s.check(a, BUNDLED_NAME, 512, "q9"), "KV cache type must be one of"),
        (lambda s, a: s.catalog_view(a, 10**100, "f16"), "Context length must be"),
        (lambda s, a: next(s.pull(a, 42)), "The model must be a name; got 42"),
    ],
)
def test_hostile_values_get_a_sentence_naming_them(service, admin, call, match):
    with pytest.raises(ModelInputError, match=match) as caught:
        call(service, admin)
    assert len(str(caught.value)) < 300


def test_records_are_bounded_and_newest_first(service, admin, ollama_server):
    for ctx in (512, 1024, 2048):
        service.load(admin, BUNDLED_NAME, ctx)
    assert [r.num_ctx for r in service.load_records(limit=2)] == [2048, 1024]


def test_partial_offload_is_reported_by_ps(service, admin, ollama_server):
    ollama_server.add_model("split:7b", vram_bytes=40 * MIB)
    service.load(admin, "split:7b", 4096)
    [loaded] = service.loaded(admin)
    assert loaded.vram_bytes == 40 * MIB
    assert loaded.ram_bytes == loaded.size_bytes - 40 * MIB > 0
    assert service.load_records()[0].actual_vram_bytes == 40 * MIB


def test_loading_a_model_nobody_knows_is_a_clear_error(service, admin, ollama_server):
    with pytest.raises(ModelNotFound, match="neither in the catalog nor installed"):
        service.load(admin, "mystery:3b", 2048)


# -- admission through the service --------------------------------------------------------


def crowded_gpu() -> FakeNvml:
    """An 8 GiB card with 7.9 GiB held, 7.5 GiB of it by this very process (named by psutil)."""
    mine = NvmlProcess(pid=os.getpid(), used_bytes=int(7.5 * GIB))
    return FakeNvml([FakeGpu(total_bytes=8 * GIB, used_bytes=int(7.9 * GIB), processes=[mine])])


def test_refusal_carries_the_numbers_and_the_override_is_audited(
    store, ollama_engine, ollama_server, admin, tmp_path
):
    service = build(store, ollama_engine, tmp_path, crowded_gpu())
    service.set_admission_settings(admin, AdmissionSettings("strict", margin=256))
    with pytest.raises(AdmissionRefused) as caught:
        service.load(admin, BUNDLED_NAME, 2048)
    text = str(caught.value)
    assert text.startswith(f"Refused: {BUNDLED_NAME}")
    assert "GPU memory in use: 7.9 GiB of 8.0 GiB" in text
    assert f"{process_name(os.getpid())} (pid {os.getpid()}) 7.5 GiB" in text
    assert "Policy strict" in text
    assert ollama_server.state.running() == [], "a refused load never reaches the engine"
    [(_, _, outcome, detail)] = audit(store, "model.load")
    assert outcome == "refused" and "policy strict: refuse" in detail and "MiB" in detail
    result = service.load(admin, BUNDLED_NAME, 2048, override=True)
    assert result.overridden
    assert [m.name for m in service.loaded(admin)] == [BUNDLED_NAME]
    [(actor, _, outcome, detail)] = audit(store, "model.load.override")
    assert (actor, outcome) == ("root", "ok") and "refuse" in detail and "actual" in detail
    assert service.load_records()[0].overridden
    assert service.load_records()[0].vram_delta_bytes == 0  # the fake card's numbers stay put


def test_admission_settings_are_stored_and_audited(service, admin, store):
    assert service.admission_settings() == AdmissionSettings()
    service.set_admission_settings(
        admin, AdmissionSettings("relaxed", 5, "%", "q8_0", flash_attention=True)
    )
    assert service.admission_settings() == AdmissionSettings(
        "relaxed", 5, "%", "q8_0", flash_attention=True
    )
    [(_, _, outcome, detail)] = audit(store, "admission.settings")
    assert outcome == "ok" and "balanced -> relaxed" in detail and "512 MiB -> 5 %" in detail


def test_chat_model_check(service, admin, ollama_server):
    decision = service.chat.chat_model_check(admin, BUNDLED_NAME, 2048)
    assert decision is not None and decision.model == BUNDLED_NAME
    service.load(admin, BUNDLED_NAME, 2048)
    assert service.chat.chat_model_check(admin, BUNDLED_NAME, 2048) is None  # loaded already
    assert service.chat.chat_model_check(admin, "unknown:1b", 2048) is None  # unknowable
    refused = service.chat.chat_model_check(admin, "llama3.1:70b-instruct-fp16", 4096)
    assert refused is not None and refused.verdict == "refuse"


def test_an_installed_model_is_estimated_from_its_real_tensors(service, admin, ollama_server):
    exact = service.check(admin, BUNDLED_NAME, 2048)  # installed: /api/show verbose tensors
    facts = ollama_server.facts
    listed = [TensorInfo(t["name"], t["type"], tuple(t["shape"])) for t in facts.tensors]
    assert exact.estimate.weights_source == "exact"
    assert exact.estimate.weights_bytes == sum(tensor_bytes(t) for t in listed)
    assert exact.estimate.tied_output_bytes == exact.estimate.token_embd_bytes > 0  # tied
    assert any("from the file's tensors" in reason for reason in exact.reasons)
    recipe = service.check(admin, "llama3.1:8b", 2048)  # not installed: the catalog's recipe
    assert recipe.estimate.weights_source == "recipe"
    assert any("from llama.cpp's recipe" in reason for reason in recipe.reasons)


def test_catalog_view_marks_installed_models(service, admin, ollama_server):
    ollama_server.add_model("qwen2.5:0.5b")
    view = service.catalog_view(admin, num_ctx=2048)
    qwen = [r for r in view.rows if r.fit.tag.startswith("qwen2.5:0.5b")]
    assert [r.installed for r in qwen] == [r.is_default_quant for r in qwen]
    assert sum(r.installed for r in view.rows) == 1
    assert view.engine_error == ""
    assert {r.fit.verdict for r in view.rows} <= {"CPU only", "will not fit"}  # no GPU here


# -- who may ----------------------------------------------------------------------------------


def test_staff_is_refused_every_admin_operation_and_each_is_audited(
    service, alice, ollama_server, store
):
    attempts = {
        "model.pull": lambda: list(service.pull(alice, SMOLLM_360M)),
        "model.delete": lambda: service.delete(alice, BUNDLED_NAME),
        "model.load": lambda: service.load(alice, BUNDLED_NAME, 2048),
        "model.unload": lambda: service.unload(alice, BUNDLED_NAME),
        "admission.settings": lambda: service.set_admission_settings(
            alice, AdmissionSettings("off")
        ),
    }
    for action, attempt in attempts.items():
        with pytest.raises(PermissionDenied, match="Only an admin may"):
            attempt()
        [(actor, _, outcome, _)] = audit(store, action)
        assert (actor, outcome) == ("alice", "refused"), action
    assert ollama_server.installed_names() == [BUNDLED_NAME]
    assert ollama_server.state.running() == []
    assert ollama_server.events.pulls_completed == 0
    assert service.admission_settings() == AdmissionSettings()
    assert service.catalog_view(alice).rows, "staff still sees the catalog"


def test_an_unreachable_engine_gives_readable_errors(store, admin, refused_ollama_host, tmp_path):
    engine = OllamaEngine(refused_ollama_host, timeout_s=5)
    service = build(store, engine, tmp_path, FakeNvml([]))
    with pytest.raises(EngineUnavailable, match=refused_ollama_host):
        service.installed(admin)
    with pytest.raises(EngineUnavailable, match="not reachable"):
        list(service.pull(admin, SMOLLM_360M))
    view = service.catalog_view(admin)
    assert view.rows and refused_ollama_host in view.engine_error
    engine.close()


def test_loads_measured_above_their_estimate_widen_the_margin_audited(
    service, admin, ollama_server, store
):
    service.load(admin, BUNDLED_NAME, 2048)  # the fake engine reports exactly the estimate
    assert service.learned_margin().bytes == 0
    [first] = service.load_records()
    assert first.host == ollama_server.url
    over = replace(first, actual_size_bytes=first.estimate_total_bytes + 300 * MIB)
    LoadRecords(store).add(over)  # a load that took 300 MiB more than estimated
    decision = service.check(admin, BUNDLED_NAME, 1024)
    assert any("300 MiB learned from loads" in reason for reason in decision.reasons)
    [(actor, _, outcome, detail)] = audit(store, "admission.margin.learned")
    assert (actor, outcome) == ("system", "ok")
    assert "0 MiB -> 300 MiB" in detail and BUNDLED_NAME in detail
    errors = {(e.kind, e.name): e for e in service.load_error_summaries()}
    assert errors[("model", BUNDLED_NAME)].loads == 2
    assert errors[("host", ollama_server.url)].worst_excess_bytes == 300 * MIB
