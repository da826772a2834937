"""Turn catalog views, admission decisions, model lists, load records and pull progress into the
HTML the Models tab shows."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from backend.units import format_bytes, format_size
from ui.common import format_expiry

if TYPE_CHECKING:
    from backend.admission import Decision
    from backend.admission.settings import LearnedMargin
    from backend.models_admin import CatalogRow, CatalogView
    from backend.models_admin.load_records import ErrorSummary, LoadRecord
    from backend.models_admin.pull_progress import PullUpdate
    from backend.services import InstalledModel, LoadedModel

ANY_FAMILY, ANY_SIZE = "All families", "Any size"
ROOMIEST = "the roomiest host"  # the catalog's default host on a pool of engines
SIZES = {"< 3B": (0, 3e9), "3–9B": (3e9, 10e9), "10–35B": (10e9, 36e9), "> 35B": (36e9, 1e15)}
BADGES = {  # placement verdict -> (label, colour)
    "full GPU offload": ("full GPU", "#16a34a"),
    "partial offload": ("partial offload", "#d97706"),
    "CPU only": ("CPU only", "#2563eb"),
    "will not fit": ("will not fit", "#dc2626"),
}
VERDICTS = {
    "admit": ("admit", "#16a34a"),
    "warn": ("warn", "#d97706"),
    "refuse": ("refuse", "#dc2626"),
}
STYLE = """<style>
.mm-badge{display:inline-block;color:#fff;padding:1px 8px;border-radius:8px;font-size:.85em;
 white-space:nowrap}
.mm-sub{color:var(--body-text-color-subdued);font-size:.85em}
.mm-bar{height:10px;border-radius:5px;background:var(--border-color-primary);margin:4px 0}
.mm-bar>div{height:100%;border-radius:5px;background:var(--color-accent)}
.mm-bar.small{height:5px}
table.mm-table{width:100%;border-collapse:collapse;font-size:.9em}
.mm-table.mm-table td,.mm-table.mm-table th{border:0;text-align:left;padding:4px 8px;
 border-bottom:1px solid var(--border-color-primary)}
.mm-reasons li{margin:2px 0}
</style>"""


def badge(label: str, colour: str) -> str:
    return f'<span class="mm-badge" style="background:{colour}">{escape(label)}</span>'


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """An HTML table; cells are HTML already (escape text before)."""
    if not rows:
        return f'<p class="mm-sub">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="mm-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _bar(fraction: float | None, small: bool = False) -> str:
    pct = 0.0 if fraction is None else min(max(fraction * 100, 0.0), 100.0)
    return (
        f'<div class="mm-bar{" small" if small else ""}"><div style="width:{pct:.1f}%"></div></div>'
    )


def _split(vram_bytes: int, ram_bytes: int) -> str:
    if not vram_bytes:
        return "all in RAM"
    return f"{format_size(vram_bytes)} VRAM + {format_size(ram_bytes)} RAM"


def _host_now(view: CatalogView) -> str:
    """What the judged host has free now, in words (HTML)."""
    m = view.machine
    if m.unknown:
        return (
            f"Host <b>{escape(view.host)}</b>: GPU memory not known, so nothing fits there by "
            f"numbers: {escape(m.unknown)}"
        )
    gpu = (
        f"{format_size(m.free_vram_bytes)} of {format_size(m.total_vram_bytes)} GPU memory free"
        if m.has_gpu
        else "no NVIDIA GPU (models run on the CPU)"
    )
    if not view.host:
        return (
            f"This machine now: {gpu}, {format_size(m.free_ram_bytes)} of "
            f"{format_size(m.total_ram_bytes)} RAM available."
        )
    facts = f" ({escape(m.facts)})" if m.facts else ""
    ram = (
        f", {format_size(m.free_ram_bytes)} of {format_size(m.total_ram_bytes)} RAM available"
        if m.ram_known
        else "; its RAM is not known, so only a full GPU offload fits there"
    )
    return f"Host <b>{escape(view.host)}</b> now: {gpu}{facts}{ram}."


def machine_html(view: CatalogView) -> str:
    note = f" · ⚠ {escape(view.engine_error)}" if view.engine_error else ""
    return (
        f'{STYLE}<p class="mm-sub" data-host="{escape(view.host)}">{_host_now(view)} '
        "Estimates at num_ctx "
        f"{view.num_ctx} × {view.parallel} slot(s) (OLLAMA_NUM_PARALLEL) with a "
        f"{escape(view.kv_cache_type)} KV cache, flash attention "
        f"{'on' if view.flash_attention else 'off'}.{note}</p>"
    )


def catalog_samples(
    view: CatalogView, family: str, size: str, fits_only: bool
) -> tuple[list[list[str]], list[str]]:
    low, high = SIZES.get(size, (0, 1e15))
    rows: list[CatalogRow] = [
        r
        for r in view.rows
        if family in (ANY_FAMILY, "", None, r.fit.family)
        and low <= r.parameter_count < high
        and not (fits_only and r.fit.verdict == "will not fit")
    ]
    samples = []
    for r in rows:
        f = r.fit
        speed = f"≤ {f.tokens_per_s_bound:.1f} tok/s" if f.tokens_per_s_bound else "–"
        download = ("" if f.size_source == "exact" else "~") + format_size(f.file_size_bytes)
        samples.append(
            [
                f"<b>{escape(f.display_name)}</b><br><span class='mm-sub'>{escape(f.tag)}</span>",
                escape(f.quant),
                f"{format_size(f.total_bytes)}<br>"
                f"<span class='mm-sub'>{_split(f.vram_bytes, f.ram_bytes)}</span>",
                badge(*BADGES[f.verdict]),
                speed,
                download,
                "✓ installed" if r.installed else "",
            ]
        )
    return samples, [r.fit.tag for r in rows]


def decision_html(decision: Decision, title: str = "") -> str:
    """The admission decision: verdict, reasons with numbers, what would fit instead."""
    e, p = decision.estimate, decision.placement
    speed = f"≤ {decision.tokens_per_s_bound:.1f} tok/s" if decision.tokens_per_s_bound else "–"
    breakdown = _parts_table(decision)
    facts = "the file's tensors" if e.weights_source == "exact" else "llama.cpp's recipe"
    slots = f" × {e.parallel} slots" if e.parallel > 1 else ""
    breakdown += (
        f"<p class='mm-sub'>{p.gpu_layers}/{p.total_layers} layers on the GPU · speed {speed} · "
        f"num_ctx {decision.num_ctx}{slots} · weights from {facts}</p>"
    )
    reasons = "".join(f"<li>{escape(r)}</li>" for r in decision.reasons)
    tips = _table(
        ["Instead", "Needs", "VRAM", "RAM", "Placement", "Verdict"],
        [
            [
                escape(s.label),
                format_size(s.total_bytes),
                format_size(s.vram_bytes),
                format_size(s.ram_bytes),
                badge(*BADGES[s.placement_verdict]),
                badge(*VERDICTS[s.verdict]),
            ]
            for s in decision.suggestions
        ],
        "",
    )
    return (
        f'{STYLE}<div class="mm-decision" data-verdict="{escape(decision.verdict)}">'
        f"<b>{escape(title or decision.model)}</b> at num_ctx {decision.num_ctx} · "
        f"policy {escape(decision.policy)}: {badge(*VERDICTS[decision.verdict])} "
        f"{badge(*BADGES[p.verdict])}{breakdown}<ul class='mm-reasons'>{reasons}</ul>{tips}</div>"
    )


def _parts_table(decision: Decision) -> str:
    """The load's buffers where llama.cpp puts them: a GPU row and a host row."""
    p = decision.placement
    rows = []
    for side, parts in (("GPU", p.gpu), ("Host", p.host)):
        rows.append(
            [
                side,
                format_size(parts.weights_bytes),
                format_size(parts.kv_cache_bytes),
                format_size(parts.compute_bytes),
                format_size(parts.output_bytes),
                format_size(parts.overhead_bytes),
                f"<b>{format_size(parts.total_bytes)}</b>",
            ]
        )
    headers = ["Where", "Weights", "KV cache", "Compute", "Output", "Runtime", "Total"]
    return _table(headers, rows, "")


def installed_html(models: list[InstalledModel]) -> str:
    rows = [
        [
            f"<b>{escape(m.name)}</b>",
            escape(m.family or "–"),
            escape(m.parameter_size or "–"),
            escape(m.quantization or "–"),
            format_size(m.size_bytes),
            escape(m.modified_at[:16].replace("T", " ") or "–"),
        ]
        for m in models
    ]
    headers = ["Name", "Family", "Parameters", "Quant", "Size on disk", "Modified"]
    return STYLE + _table(headers, rows, "No models installed.")


def loaded_html(models: list[LoadedModel]) -> str:
    rows = []
    for m in models:
        gpu_pct = 100 * m.vram_bytes / m.size_bytes if m.size_bytes else 0
        where = "100% GPU" if not m.ram_bytes else f"{gpu_pct:.0f}% GPU / {100 - gpu_pct:.0f}% CPU"
        rows.append(
            [
                f"<b>{escape(m.name)}</b>",
                format_size(m.size_bytes),
                format_size(m.vram_bytes),
                format_size(m.ram_bytes),
                where if m.vram_bytes else "100% CPU",
                str(m.context_length or "–"),
                escape(format_expiry(m.expires_at)),
            ]
        )
    headers = ["Name", "Size", "VRAM part", "RAM part", "Placement", "Context", "Expires"]
    return STYLE + _table(headers, rows, "No model is loaded.")


def records_html(
    records: list[LoadRecord],
    errors: Sequence[ErrorSummary] = (),
    learned: LearnedMargin | None = None,
) -> str:
    def size(v: int | None) -> str:
        return "–" if v is None else format_size(v)

    rows = [
        [
            escape(r.at[:19].replace("T", " ")),
            escape(r.model) + (" (override)" if r.overridden else ""),
            str(r.num_ctx),
            f"{size(r.estimate_total_bytes)} ({size(r.estimate_vram_bytes)} VRAM)",
            f"{size(r.actual_size_bytes)} ({size(r.actual_vram_bytes)} VRAM)",
            size(r.vram_delta_bytes),
            size(r.ram_delta_bytes),
            "–" if r.error_pct is None else f"{r.error_pct:+.0f}%",
        ]
        for r in records
    ]
    headers = ["When", "Model", "Context", "Estimate", "Engine (/api/ps)", "NVML Δ", "RAM Δ",
               "Error"]  # fmt: skip
    return STYLE + _table(headers, rows, "No loads recorded yet.") + _errors_html(errors, learned)


def _errors_html(errors: Sequence[ErrorSummary], learned: LearnedMargin | None) -> str:
    """Mean and worst error per model and per host, and the margin admission learned."""
    if not errors:
        return ""
    rows = [
        [
            escape(e.kind),
            escape(e.name),
            str(e.loads),
            f"{e.mean_error_pct:+.1f}%",
            f"{e.worst_error_pct:+.1f}%",
            format_size(e.worst_excess_bytes) if e.worst_excess_bytes else "–",
        ]
        for e in errors
    ]
    headers = ["Per", "Name", "Loads", "Mean error", "Worst error", "Most above estimate"]
    note = learned.describe() if learned else ""
    margin = (
        f"<p class='mm-sub' id='models-learned-margin'>Admission keeps "
        f"{escape(note)} free on top of its safety margin.</p>"
        if note
        else "<p class='mm-sub'>No measured load ran above its estimate: no margin added.</p>"
    )
    return _table(headers, rows, "") + margin


def pull_html(update: PullUpdate) -> str:
    pct = f"{update.fraction * 100:.1f}%" if update.fraction is not None else "…"
    speed = f" · {format_bytes(update.bytes_per_s)}/s" if update.bytes_per_s else ""
    pct_value = (update.fraction or 0) * 100
    state = "done" if update.done else "cancelled" if update.cancelled else "running"
    head = (
        f"✓ {escape(update.model)} pulled: {format_size(update.total_bytes)} in "
        f"{len(update.layers)} layer(s)"
        if update.done
        else f"{escape(update.model)}: {escape(update.status)} — {pct} · "
        f"{format_size(update.completed_bytes)} of {format_size(update.total_bytes)}{speed}"
    )
    layers = "".join(
        f"<div class='mm-sub'>{escape(layer.digest[7:19])} · "
        f"{format_bytes(layer.completed_bytes)} of {format_bytes(layer.total_bytes)}</div>"
        + _bar(layer.completed_bytes / layer.total_bytes if layer.total_bytes else None, True)
        for layer in update.layers
    )
    return (
        f'{STYLE}<div class="mm-pull" data-state="{state}" data-pct="{pct_value:.1f}">'
        f"<div>{head}</div>{_bar(update.fraction)}{layers}</div>"
    )
