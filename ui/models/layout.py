"""The Models tab's components: the catalog and its filters, pull, installed models and their
load/delete controls, loaded models, and the estimate-vs-actual records. Created in the order
the page shows them; admin-only groups start hidden."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from ui.models.render import ANY_FAMILY, ANY_SIZE, SIZES, STYLE

CONTEXT_CHOICES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
KV_CHOICES = ["f16", "q8_0", "q4_0"]
_HEADERS = ["Model", "Quant", "Memory", "Fit", "Decode speed", "Download", "Installed"]


@dataclass(frozen=True)
class CatalogControls:
    machine: gr.HTML
    ctx: gr.Dropdown
    kv: gr.Dropdown
    family: gr.Dropdown
    size: gr.Dropdown
    fits_only: gr.Checkbox
    host: gr.Dropdown  # the pool engine whose host the badges judge (hidden on one engine)
    table: gr.Dataset
    tags: gr.State  # the tags of the rows shown, in order (the Dataset sends an index)
    detail: gr.HTML

    @property
    def inputs(self) -> list[gr.Dropdown | gr.Checkbox]:
        return [self.ctx, self.kv, self.family, self.size, self.fits_only, self.host]

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [self.machine, self.table, self.tags]


@dataclass(frozen=True)
class PullControls:
    group: gr.Group
    tag: gr.Textbox
    pull: gr.Button
    cancel: gr.Button
    progress: gr.HTML


@dataclass(frozen=True)
class ManageControls:
    group: gr.Group
    pick: gr.Dropdown
    ctx: gr.Dropdown
    check: gr.Button
    load: gr.Button
    delete: gr.Button
    confirm_row: gr.Row
    confirm_text: gr.Markdown
    confirm: gr.Button
    keep: gr.Button
    decision: gr.HTML
    override: gr.Button


@dataclass(frozen=True)
class LoadedControls:
    html: gr.HTML
    group: gr.Row
    pick: gr.Dropdown
    unload: gr.Button


@dataclass(frozen=True)
class ModelsLayout:
    notice: gr.Markdown
    catalog: CatalogControls
    pull: PullControls
    installed: gr.HTML
    manage: ManageControls
    loaded: LoadedControls
    records: gr.HTML
    refresh: gr.Button

    @property
    def list_outputs(self) -> list[gr.components.Component]:
        """In the order of wiring.list_outputs."""
        return [self.installed, self.manage.pick, self.loaded.html, self.loaded.pick,
                self.records, self.notice]  # fmt: skip

    @property
    def admin_groups(self) -> list[gr.blocks.Block]:
        return [self.pull.group, self.manage.group, self.loaded.group]


def _catalog(families: list[str], hosts: Sequence[str]) -> CatalogControls:
    machine = gr.HTML(STYLE, elem_id="models-machine")
    with gr.Row():
        host = gr.Dropdown(
            list(hosts), value=hosts[0] if hosts else None, label="Fit on host",
            visible=bool(hosts), elem_id="cat-host",
        )  # fmt: skip
        ctx = gr.Dropdown(CONTEXT_CHOICES, value=4096, label="Context length", elem_id="cat-ctx")
        kv = gr.Dropdown(KV_CHOICES, value="f16", label="KV cache type", elem_id="cat-kv")
        family = gr.Dropdown(families, value=ANY_FAMILY, label="Family", elem_id="cat-family")
        size = gr.Dropdown([ANY_SIZE, *SIZES], value=ANY_SIZE, label="Size", elem_id="cat-size")
        fits_only = gr.Checkbox(label="Fits this machine only", elem_id="cat-fits")
    table = gr.Dataset(
        components=[gr.HTML(label=h, visible=False) for h in _HEADERS],
        samples=[],
        type="index",
        layout="table",
        samples_per_page=12,
        label="Catalog (click a row for its estimate)",
        elem_id="models-catalog",
    )
    tags = gr.State([])
    detail = gr.HTML("", elem_id="models-detail")
    return CatalogControls(machine, ctx, kv, family, size, fits_only, host, table, tags, detail)


def _pull() -> PullControls:
    with gr.Group(visible=False) as group:
        with gr.Row(equal_height=True):
            tag = gr.Textbox(
                label="Pull a model: catalog row or any Ollama tag",
                placeholder="e.g. llama3.2:3b",
                elem_id="pull-tag",
                scale=4,
            )
            pull = gr.Button("Pull", variant="primary", elem_id="pull-btn", scale=1)
            cancel = gr.Button("Cancel", variant="stop", elem_id="pull-cancel", scale=1)
        progress = gr.HTML("", elem_id="pull-progress")
    return PullControls(group, tag, pull, cancel, progress)


def _manage() -> ManageControls:
    with gr.Group(visible=False) as group:
        with gr.Row(equal_height=True):
            pick = gr.Dropdown([], label="Model", allow_custom_value=True, elem_id="load-model")
            ctx = gr.Dropdown(CONTEXT_CHOICES, value=4096, label="Context length",
                              elem_id="load-ctx")  # fmt: skip
            check = gr.Button("Check fit", elem_id="check-btn")
            load = gr.Button("Load", variant="primary", elem_id="load-btn")
            delete = gr.Button("Delete", variant="stop", elem_id="delete-btn")
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown("")
            confirm = gr.Button("Yes, delete it", variant="stop", elem_id="delete-confirm")
            keep = gr.Button("Keep", elem_id="delete-keep")
        decision = gr.HTML("", elem_id="load-decision")
        override = gr.Button("Load anyway (audited)", variant="stop", visible=False,
                             elem_id="load-override")  # fmt: skip
    return ManageControls(group, pick, ctx, check, load, delete, confirm_row, confirm_text,
                          confirm, keep, decision, override)  # fmt: skip


def _loaded() -> LoadedControls:
    html = gr.HTML("", elem_id="models-loaded")
    with gr.Row(visible=False, equal_height=True) as group:
        pick = gr.Dropdown(
            [], label="Loaded model", allow_custom_value=True, elem_id="unload-model"
        )
        unload = gr.Button("Unload", elem_id="unload-btn")
    return LoadedControls(html, group, pick, unload)


def layout(families: Sequence[str], hosts: Sequence[str] = ()) -> ModelsLayout:
    """Create the components in the current render context (normally the Models gr.Tab);
    `hosts` are the catalog's host choices (none: one engine, the picker is hidden)."""
    notice = gr.Markdown("", elem_id="models-notice")
    catalog = _catalog([ANY_FAMILY, *families], hosts)
    pull = _pull()
    gr.Markdown("### Installed")
    installed = gr.HTML("", elem_id="models-installed")
    manage = _manage()
    gr.Markdown("### Loaded")
    loaded = _loaded()
    gr.Markdown("### Estimate vs actual (last loads)")
    records = gr.HTML("", elem_id="models-records")
    refresh = gr.Button("Refresh", size="sm", elem_id="models-refresh")
    return ModelsLayout(notice, catalog, pull, installed, manage, loaded, records, refresh)
