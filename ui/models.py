"""The Models tab: the catalog with fit badges, installed and loaded models, pull, load, unload,
delete, and the admission decision in numbers. Admin controls are hidden from staff (and the
server refuses staff anyway)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

import gradio as gr

from backend.admission import Decision, format_size
from backend.engines.base import EngineError
from backend.models_service import (
    AdmissionRefused,
    CatalogRow,
    CatalogView,
    LoadRecord,
    PullUpdate,
)
from ui.common import PRIVATE, acting_user, format_bytes, guarded

if TYPE_CHECKING:
    from backend.engines.base import InstalledModel, LoadedModel
    from backend.services import Services

CONTEXT_CHOICES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
KV_CHOICES = ["f16", "q8_0", "q4_0"]
ANY_FAMILY, ANY_SIZE = "All families", "Any size"
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
PULL_UPDATE_EVERY_S = 0.1
_STYLE = """<style>
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


def machine_html(view: CatalogView) -> str:
    m = view.machine
    gpu = (
        f"{format_size(m.free_vram_bytes)} of {format_size(m.total_vram_bytes)} GPU memory free"
        if m.has_gpu
        else "no NVIDIA GPU (models run on the CPU)"
    )
    note = f" · ⚠ {escape(view.engine_error)}" if view.engine_error else ""
    return (
        f'{_STYLE}<p class="mm-sub">This machine now: {gpu}, {format_size(m.free_ram_bytes)} '
        f"of {format_size(m.total_ram_bytes)} RAM available. Estimates at num_ctx "
        f"{view.num_ctx} with a {escape(view.kv_cache_type)} KV cache.{note}</p>"
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
    breakdown = _table(
        ["Weights", "KV cache", "Compute", "Output", "Runtime", "Total", "GPU layers", "Speed"],
        [
            [
                format_size(e.weights_bytes),
                format_size(e.kv_cache_bytes),
                format_size(e.compute_bytes),
                format_size(e.output_bytes),
                format_size(e.overhead_bytes),
                f"<b>{format_size(e.total_bytes)}</b>",
                f"{p.gpu_layers}/{p.total_layers}",
                speed,
            ]
        ],
        "",
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
        f'{_STYLE}<div class="mm-decision" data-verdict="{decision.verdict}">'
        f"<b>{escape(title or decision.model)}</b> at num_ctx {decision.num_ctx} · "
        f"policy {decision.policy}: {badge(*VERDICTS[decision.verdict])} "
        f"{badge(*BADGES[p.verdict])}{breakdown}<ul class='mm-reasons'>{reasons}</ul>{tips}</div>"
    )


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
    return _STYLE + _table(headers, rows, "No models installed.")


def _expires(iso: str) -> str:
    if not iso:
        return "never"
    try:
        left = (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()
    except ValueError:
        return escape(iso)
    return f"in {left / 60:.0f} min" if left >= 60 else f"in {max(left, 0):.0f} s"


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
                _expires(m.expires_at),
            ]
        )
    headers = ["Name", "Size", "VRAM part", "RAM part", "Placement", "Context", "Expires"]
    return _STYLE + _table(headers, rows, "No model is loaded.")


def records_html(records: list[LoadRecord]) -> str:
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
    return _STYLE + _table(headers, rows, "No loads recorded yet.")


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
        f'{_STYLE}<div class="mm-pull" data-state="{state}" data-pct="{pct_value:.1f}">'
        f"<div>{head}</div>{_bar(update.fraction)}{layers}</div>"
    )


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Models tab's components inside the current gr.Tab and wire their events."""
    models = services.models
    pulls: dict[str, threading.Event] = {}  # session -> Cancel flag of its pull in flight
    families = [ANY_FAMILY, *services.catalog.families()]

    notice = gr.Markdown("", elem_id="models-notice")
    machine = gr.HTML(_STYLE, elem_id="models-machine")
    with gr.Row():
        ctx = gr.Dropdown(CONTEXT_CHOICES, value=4096, label="Context length", elem_id="cat-ctx")
        kv = gr.Dropdown(KV_CHOICES, value="f16", label="KV cache type", elem_id="cat-kv")
        family = gr.Dropdown(families, value=ANY_FAMILY, label="Family", elem_id="cat-family")
        size = gr.Dropdown([ANY_SIZE, *SIZES], value=ANY_SIZE, label="Size", elem_id="cat-size")
        fits_only = gr.Checkbox(label="Fits this machine only", elem_id="cat-fits")
    headers = ["Model", "Quant", "Memory", "Fit", "Decode speed", "Download", "Installed"]
    catalog = gr.Dataset(
        components=[gr.HTML(label=h, visible=False) for h in headers],
        samples=[],
        type="index",
        layout="table",
        samples_per_page=12,
        label="Catalog (click a row for its estimate)",
        elem_id="models-catalog",
    )
    tags = gr.State([])
    detail = gr.HTML("", elem_id="models-detail")
    with gr.Group(visible=False) as pull_group:
        with gr.Row(equal_height=True):
            pull_tag = gr.Textbox(
                label="Pull a model: catalog row or any Ollama tag",
                placeholder="e.g. llama3.2:3b",
                elem_id="pull-tag",
                scale=4,
            )
            pull_btn = gr.Button("Pull", variant="primary", elem_id="pull-btn", scale=1)
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="pull-cancel", scale=1)
        progress_html = gr.HTML("", elem_id="pull-progress")
    gr.Markdown("### Installed")
    installed = gr.HTML("", elem_id="models-installed")
    with gr.Group(visible=False) as manage_group:
        with gr.Row(equal_height=True):
            pick = gr.Dropdown([], label="Model", allow_custom_value=True, elem_id="load-model")
            load_ctx = gr.Dropdown(CONTEXT_CHOICES, value=4096, label="Context length",
                                   elem_id="load-ctx")  # fmt: skip
            check_btn = gr.Button("Check fit", elem_id="check-btn")
            load_btn = gr.Button("Load", variant="primary", elem_id="load-btn")
            delete_btn = gr.Button("Delete", variant="stop", elem_id="delete-btn")
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown("")
            confirm_btn = gr.Button("Yes, delete it", variant="stop", elem_id="delete-confirm")
            keep_btn = gr.Button("Keep", elem_id="delete-keep")
        decision = gr.HTML("", elem_id="load-decision")
        override_btn = gr.Button("Load anyway (audited)", variant="stop", visible=False,
                                 elem_id="load-override")  # fmt: skip
    gr.Markdown("### Loaded")
    loaded = gr.HTML("", elem_id="models-loaded")
    with gr.Row(visible=False, equal_height=True) as unload_group:
        loaded_pick = gr.Dropdown(
            [], label="Loaded model", allow_custom_value=True, elem_id="unload-model"
        )
        unload_btn = gr.Button("Unload", elem_id="unload-btn")
    gr.Markdown("### Estimate vs actual (last loads)")
    records = gr.HTML("", elem_id="models-records")
    refresh_btn = gr.Button("Refresh", size="sm", elem_id="models-refresh")

    # -- handlers ------------------------------------------------------------------------------

    def lists(request: gr.Request):
        """Installed, loaded and records; an engine that is down shows its error, not a crash."""
        user = acting_user(services, request)
        note = ""
        try:
            have, running = models.installed(user), models.loaded(user)
        except EngineError as exc:
            have, running, note = [], [], f"⚠ {exc}"
        names = [m.name for m in have]
        up = [m.name for m in running]
        return (
            installed_html(have),
            gr.Dropdown(choices=names),
            loaded_html(running),
            gr.Dropdown(choices=up, value=up[0] if up else None),
            records_html(models.load_records()),
            note,
        )

    list_outputs = [installed, pick, loaded, loaded_pick, records, notice]

    @guarded
    def models_catalog(num_ctx, kv_type, fam, bucket, fits, request: gr.Request):
        view = models.catalog_view(acting_user(services, request), int(num_ctx), kv_type)
        samples, shown = catalog_samples(view, fam, bucket, bool(fits))
        return machine_html(view), gr.Dataset(samples=samples), shown

    catalog_inputs = [ctx, kv, family, size, fits_only]
    catalog_outputs = [machine, catalog, tags]

    @guarded
    def models_tab_load(request: gr.Request):
        user = acting_user(services, request)
        shown = gr.update(visible=user.is_admin)
        return shown, shown, shown, *lists(request)

    @guarded
    def models_refresh(request: gr.Request):
        return lists(request)

    @guarded
    def models_select(index, shown, num_ctx, kv_type, request: gr.Request):
        user = acting_user(services, request)
        if not isinstance(index, int) or not 0 <= index < len(shown or []):
            raise ValueError("Pick a row of the catalog.")
        tag = shown[index]
        found = models.check(user, tag, int(num_ctx), kv_type)
        return decision_html(found, f"{tag} — estimate on this machine"), tag

    def models_pull(tag: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        user = acting_user(services, request)
        cancel = pulls[request.session_hash] = threading.Event()
        last = 0.0
        try:
            for update in models.pull(user, tag or "", cancel):
                if update.fraction is not None:
                    progress(update.fraction, desc=f"{update.status} {update.fraction:.0%}")
                now = time.monotonic()
                if update.done or update.cancelled or now - last >= PULL_UPDATE_EVERY_S:
                    last = now
                    yield pull_html(update)
        finally:
            pulls.pop(request.session_hash, None)

    def models_cancel_pull(request: gr.Request) -> None:
        if (flag := pulls.get(request.session_hash)) is not None:
            flag.set()

    @guarded
    def models_check(model, num_ctx, request: gr.Request):
        found = models.check(acting_user(services, request), model or "", int(num_ctx))
        return decision_html(found), gr.update(visible=False)

    def loader(override: bool):
        def run(model, num_ctx, request: gr.Request):
            user = acting_user(services, request)
            try:
                result = models.load(user, model or "", int(num_ctx), override=override)
            except AdmissionRefused as exc:
                gr.Warning(f"Refused: {model} would not fit; see the numbers below.")
                return decision_html(exc.decision), gr.update(visible=True)
            gr.Info(f"{model} is loaded.")
            return decision_html(result.decision), gr.update(visible=False)

        return guarded(run)

    @guarded
    def models_delete_ask(model, request: gr.Request):
        acting_user(services, request)
        if not model:
            raise ValueError("Pick an installed model first.")
        text = f"Delete **{model}** from the engine? Its files are removed."
        return gr.update(visible=True), text

    @guarded
    def models_delete(model, request: gr.Request):
        models.delete(acting_user(services, request), model or "")
        gr.Info(f"{model} was deleted.")
        return gr.update(visible=False)

    @guarded
    def models_unload(model, request: gr.Request):
        models.unload(acting_user(services, request), model or "")
        gr.Info(f"{model} was unloaded.")

    # -- wiring --------------------------------------------------------------------------------

    demo.load(
        models_tab_load, None, [pull_group, manage_group, unload_group, *list_outputs], **PRIVATE
    ).then(models_catalog, catalog_inputs, catalog_outputs, **PRIVATE)
    for control in catalog_inputs:
        control.change(models_catalog, catalog_inputs, catalog_outputs, **PRIVATE)
    catalog.click(models_select, [catalog, tags, ctx, kv], [detail, pull_tag], **PRIVATE)
    refresh_btn.click(models_refresh, None, list_outputs, **PRIVATE).then(
        models_catalog, catalog_inputs, catalog_outputs, **PRIVATE
    )
    after = {"fn": models_refresh, "inputs": None, "outputs": list_outputs, **PRIVATE}
    for trigger in (pull_btn.click, pull_tag.submit):
        trigger(guarded(models_pull), [pull_tag], [progress_html], concurrency_limit=2,
                concurrency_id="models-pull", **PRIVATE).then(**after)  # fmt: skip
    cancel_btn.click(models_cancel_pull, None, None, concurrency_limit=None, **PRIVATE)
    check_btn.click(models_check, [pick, load_ctx], [decision, override_btn], **PRIVATE)
    load_cfg = {"concurrency_limit": 2, "concurrency_id": "models-load", **PRIVATE}
    for button, forced, name in ((load_btn, False, "models_load"),
                                 (override_btn, True, "models_load_override")):  # fmt: skip
        button.click(loader(forced), [pick, load_ctx], [decision, override_btn],
                     api_name=name, **load_cfg).then(**after)  # fmt: skip
    delete_btn.click(models_delete_ask, [pick], [confirm_row, confirm_text], **PRIVATE)
    keep_btn.click(
        lambda: gr.update(visible=False),
        None,
        confirm_row,
        api_name="models_delete_keep",
        **PRIVATE,
    )
    confirm_btn.click(models_delete, [pick], [confirm_row], **PRIVATE).then(**after)
    unload_btn.click(models_unload, [loaded_pick], None, **PRIVATE).then(**after)
