"""The Models tab's pure pieces: catalog filters, fit badges, decision and pull rendering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from backend.admission import LoadRequest, Machine, decide
from backend.admission.settings import AdmissionSettings
from backend.estimate.catalog import fit_rows, load_catalog, spec_for
from backend.models_admin import CatalogRow, CatalogView
from backend.models_admin.pull_progress import LayerProgress, PullUpdate
from ui.models.render import ANY_FAMILY, ANY_SIZE, BADGES, catalog_samples, decision_html, pull_html

GIB = 1024**3
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.json")
MACHINE = Machine(0, 0, 12 * GIB, 16 * GIB)  # a 16 GiB laptop without a GPU


@pytest.fixture(scope="module")
def view() -> CatalogView:
    by_tag = {q.tag: e for e in CATALOG.entries for q in e.quants}
    rows = fit_rows(
        CATALOG,
        free_vram_bytes=0,
        total_vram_bytes=0,
        free_ram_bytes=MACHINE.free_ram_bytes,
        gpu_bandwidth_gbps=None,
        ram_bandwidth_gbps=50.0,
        num_ctx=4096,
    )
    return CatalogView(
        tuple(
            CatalogRow(r, by_tag[r.tag].parameter_count, 8192, False, r.tag.endswith("q8_0"))
            for r in rows
        ),
        4096,
        "f16",
        MACHINE,
    )


def test_no_filter_shows_every_row_in_catalog_order(view: CatalogView) -> None:
    samples, tags = catalog_samples(view, ANY_FAMILY, ANY_SIZE, False)
    assert tags == [r.fit.tag for r in view.rows]
    assert len(samples) == len(tags) and all(len(s) == 7 for s in samples)


def test_family_size_and_fits_filters(view: CatalogView) -> None:
    _, tags = catalog_samples(view, "qwen2.5", ANY_SIZE, False)
    assert tags and all(CATALOG.find(t).family == "qwen2.5" for t in tags)
    _, small = catalog_samples(view, ANY_FAMILY, "< 3B", False)
    assert small and all(CATALOG.find(t).parameter_count < 3e9 for t in small)
    samples, fitting = catalog_samples(view, ANY_FAMILY, ANY_SIZE, True)
    verdicts = {r.fit.tag: r.fit.verdict for r in view.rows}
    assert fitting and all(verdicts[t] != "will not fit" for t in fitting)
    assert len(fitting) < len(view.rows), "a 16 GiB box cannot hold every model"
    assert not any("will not fit" in s[3] for s in samples)


def test_badges_carry_the_verdict_colour(view: CatalogView) -> None:
    samples, tags = catalog_samples(view, ANY_FAMILY, ANY_SIZE, False)
    verdicts = {r.fit.tag: r.fit.verdict for r in view.rows}
    for sample, tag in zip(samples, tags, strict=True):
        label, colour = BADGES[verdicts[tag]]
        assert label in sample[3] and colour in sample[3]
    installed = [s[6] for s, t in zip(samples, tags, strict=True) if t.endswith("q8_0")]
    assert installed and all(cell == "✓ installed" for cell in installed)


def test_decision_html_shows_numbers_and_escapes_names() -> None:
    entry = CATALOG.find("llama3.1:70b")
    spec = spec_for(entry, "F16")
    decision = decide(
        LoadRequest("<img src=x onerror=alert(1)>", spec, 4096),
        MACHINE,
        [],
        [],
        AdmissionSettings(),
    )
    html = decision_html(decision)
    assert 'data-verdict="refuse"' in html
    assert "<img" not in html and "&lt;img" in html
    assert "GiB" in html and "Nothing smaller would fit" in html


def test_pull_html_states() -> None:
    layer = LayerProgress("sha256:" + "a" * 64, 1000, 250)
    running = PullUpdate("m:1", "pulling aaaa", (layer,), 250, 1000, 2048.0)
    html = pull_html(running)
    assert 'data-state="running"' in html and 'data-pct="25.0"' in html and "25.0%" in html
    assert "2.0 KiB/s" in html
    done = replace(running, status="success", completed_bytes=1000, done=True)
    assert 'data-state="done"' in pull_html(done) and "✓ m:1 pulled" in pull_html(done)
    cancelled = replace(running, status="cancelled", cancelled=True)
    assert 'data-state="cancelled"' in pull_html(cancelled)
