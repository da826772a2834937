"""Learning from loads: estimate-vs-actual error per model and host, and the margin admission
adds when measured loads ran above their estimate (bounded, shown)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backend.admission.decision import decide
from backend.admission.settings import AdmissionSettings
from backend.admission.types import Machine
from backend.models_admin.load_records import (
    LEARNED_MARGIN_CAP_BYTES,
    LoadRecord,
    learned_margin,
    summaries,
)
from backend.units import GIB, MIB, format_size
from tests.unit.test_admission import request

HOST = "http://gpu-box:11434"


def record(model: str, estimate_mib: int, nvml_mib: int | None, host: str = HOST) -> LoadRecord:
    return LoadRecord(
        at="2025-01-01T00:00:00+00:00", model=model, num_ctx=4096, kv_cache_type="f16",
        estimate_total_bytes=estimate_mib * MIB, estimate_vram_bytes=estimate_mib * MIB,
        estimate_ram_bytes=0, actual_size_bytes=estimate_mib * MIB,
        actual_vram_bytes=estimate_mib * MIB,
        vram_delta_bytes=None if nvml_mib is None else nvml_mib * MIB, ram_delta_bytes=0,
        verdict="admit", host=host,
    )  # fmt: skip


def test_error_per_model_and_per_host_has_mean_and_worst() -> None:
    records = [
        record("llama3.1:8b", 6000, 6600),  # 600 MiB above the estimate: -9.1 %
        record("llama3.1:8b", 6000, 5700),  # below: +5.3 %
        record("gemma:2b", 3000, 3000, host="http://other:11434"),
    ]
    found = {(s.kind, s.name): s for s in summaries(records)}
    llama = found[("model", "llama3.1:8b")]
    assert llama.loads == 2
    assert llama.worst_error_pct == pytest.approx(-600 / 6600 * 100)
    assert llama.mean_error_pct == pytest.approx((-600 / 6600 + 300 / 5700) * 50)
    assert llama.worst_excess_bytes == 600 * MIB
    assert found[("host", HOST)].loads == 2 and found[("host", "http://other:11434")].loads == 1


def test_margin_grows_by_the_worst_excess_on_this_host_and_is_bounded() -> None:
    assert learned_margin([record("a:1b", 1000, 990)], HOST).bytes == 0
    assert learned_margin([record("a:1b", 1000, 1010)], HOST).bytes == 0  # noise
    grown = learned_margin([record("a:1b", 1000, 1400), record("b:1b", 1000, 1100)], HOST)
    assert (grown.bytes, grown.model) == (400 * MIB, "a:1b")
    assert "400 MiB learned" in grown.describe() and "a:1b" in grown.describe()
    elsewhere = learned_margin([record("a:1b", 1000, 1400, host="http://other:1")], HOST)
    assert elsewhere.bytes == 0
    huge = learned_margin([record("a:1b", 1000, 9000)], HOST)
    assert huge.bytes == LEARNED_MARGIN_CAP_BYTES < huge.raw_bytes and "capped" in huge.describe()


def test_admission_keeps_the_learned_excess_free_and_says_so() -> None:
    box = Machine(20 * GIB, 24 * GIB, 48 * GIB, 64 * GIB, gpu_bandwidth_gbps=900)
    learned = learned_margin([record("llama3.1:8b", 6000, 7000)], HOST)
    plain = decide(request(), box, [], [], AdmissionSettings())
    wider = decide(request(), box, [], [], AdmissionSettings(), learned=learned)
    assert plain.free_vram_bytes - wider.free_vram_bytes == learned.bytes == 1000 * MIB
    assert any(f"{format_size(1000 * MIB)} learned from loads" in r for r in wider.reasons)
    off = decide(request(), box, [], [], AdmissionSettings(policy="off"), learned=learned)
    assert off.free_vram_bytes == 20 * GIB  # no guardrails, no margin


def test_records_without_a_measurement_teach_nothing() -> None:
    blind = replace(record("a:1b", 1000, None), actual_size_bytes=None)
    assert summaries([blind]) == [] and learned_margin([blind]).bytes == 0


def test_models_tab_shows_the_errors_and_the_learned_margin() -> None:
    from ui.models.render import records_html

    records = [record("llama3.1:8b", 6000, 6600), record("<b>x</b>:1b", 100, 100)]
    learned = learned_margin(records, HOST)
    html = records_html(records, summaries(records), learned)
    assert "Mean error" in html and "Worst error" in html and "-9.1%" in html
    assert "600 MiB learned from loads" in html and 'id="models-learned-margin"' in html.replace(
        "'", '"'
    )
    assert "<b>x</b>" not in html  # names are escaped
    assert "no margin added" in records_html(records[1:], summaries(records[1:]), None)
