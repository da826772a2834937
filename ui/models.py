"""The Models tab: the catalog with fit badges, installed and loaded models, pull, load, unload,
delete, and the admission decision in numbers. Admin controls are hidden from staff (and the
server refuses staff anyway)."""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING

import gradio as gr

from backend.chat.validation import MIN_NUM_CTX, parse_int
from backend.models_admin import AdmissionRefused, inputs
from backend.services import EngineError
from ui.common import PRIVATE, CancelRegistry, acting_user, guarded, inline_markdown
from ui.models_render import (
    ANY_FAMILY,
    ANY_SIZE,
    SIZES,
    STYLE,
    catalog_samples,
    decision_html,
    installed_html,
    loaded_html,
    machine_html,
    pull_html,
    records_html,
)

if TYPE_CHECKING:
    from backend.services import Services

CONTEXT_CHOICES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
KV_CHOICES = ["f16", "q8_0", "q4_0"]
PULL_UPDATE_EVERY_S = 0.1


def context_length(value: object) -> int:
    """The context a form sent, by the chat's rule (an int, an integral float or a numeric str)."""
    return parse_int("Context length", value, MIN_NUM_CTX, inputs.MAX_NUM_CTX)


def choice(label: str, value: object, offered: list[str], default: str) -> str:
    """One of the offered choices (None or "" means the default), else a sentence naming it."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value in offered:
        return value
    shown = inputs.quote_value(value)
    raise ValueError(f"{label} must be one of the choices offered; got {shown}.")


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Models tab's components inside the current gr.Tab and wire their events."""
    models = services.models
    pulls = CancelRegistry()  # each page session's Cancel flag of its pull in flight
    families = [ANY_FAMILY, *services.catalog.families()]

    notice = gr.Markdown("", elem_id="models-notice")
    machine = gr.HTML(STYLE, elem_id="models-machine")
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
            have, running, note = [], [], f"⚠ {inline_markdown(str(exc))}"
        names = [m.name for m in have]
        up = [m.name for m in running]
        return (
            installed_html(have),
            gr.Dropdown(choices=names),
            loaded_html(running),
            gr.Dropdown(choices=up, value=up[0] if up else None),
            records_html(
                models.load_records(), models.load_error_summaries(), models.learned_margin()
            ),
            note,
        )

    list_outputs = [installed, pick, loaded, loaded_pick, records, notice]

    @guarded
    def models_catalog(num_ctx, kv_type, fam, bucket, fits, request: gr.Request):
        user = acting_user(services, request)
        fam = choice("Family", fam, families, ANY_FAMILY)
        bucket = choice("Size", bucket, [ANY_SIZE, *SIZES], ANY_SIZE)
        view = models.catalog_view(user, context_length(num_ctx), kv_type)
        samples, shown = catalog_samples(view, fam, bucket, fits is True)
        return machine_html(view), gr.Dataset(samples=samples), shown

    catalog_inputs: list[gr.Dropdown | gr.Checkbox] = [ctx, kv, family, size, fits_only]
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
        found = models.check(user, tag, context_length(num_ctx), inputs.kv_cache_type(kv_type))
        return decision_html(found, f"{tag} — estimate on this machine"), tag

    def models_pull(tag: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        user = acting_user(services, request)
        last = 0.0
        with pulls.running(request.session_hash) as cancel:
            for update in models.pull(user, tag or "", cancel):
                if update.fraction is not None:
                    progress(update.fraction, desc=f"{update.status} {update.fraction:.0%}")
                now = time.monotonic()
                if update.done or update.cancelled or now - last >= PULL_UPDATE_EVERY_S:
                    last = now
                    yield pull_html(update)

    @guarded
    def models_cancel_pull(request: gr.Request) -> None:
        pulls.cancel(request.session_hash)

    @guarded
    def models_check(model, num_ctx, request: gr.Request):
        user = acting_user(services, request)
        found = models.check(user, model or "", context_length(num_ctx))
        return decision_html(found), gr.update(visible=False)

    def loader(override: bool):
        def run(model, num_ctx, request: gr.Request):
            user = acting_user(services, request)
            try:
                result = models.load(user, model or "", context_length(num_ctx), override=override)
            except AdmissionRefused as exc:
                shown = escape(inputs.shown_value(model))
                gr.Warning(f"Refused: {shown} would not fit; see the numbers below.")
                return decision_html(exc.decision), gr.update(visible=True)
            gr.Info(f"{escape(inputs.shown_value(model))} is loaded.")
            return decision_html(result.decision), gr.update(visible=False)

        return guarded(run)

    @guarded
    def models_delete_ask(model, request: gr.Request):
        acting_user(services, request)
        model = inputs.model_name(model, "Pick an installed model first.")
        shown = inline_markdown(inputs.shown_name(model))
        text = f"Delete **{shown}** from the engine? Its files are removed."
        return gr.update(visible=True), text

    @guarded
    def models_delete(model, request: gr.Request):
        models.delete(acting_user(services, request), model or "")
        gr.Info(f"{escape(inputs.shown_value(model))} was deleted.")
        return gr.update(visible=False)

    @guarded
    def models_unload(model, request: gr.Request):
        models.unload(acting_user(services, request), model or "")
        gr.Info(f"{escape(inputs.shown_value(model))} was unloaded.")

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
        guarded(lambda: gr.update(visible=False)),
        None,
        confirm_row,
        api_name="models_delete_keep",
        **PRIVATE,
    )
    confirm_btn.click(models_delete, [pick], [confirm_row], **PRIVATE).then(**after)
    unload_btn.click(models_unload, [loaded_pick], None, **PRIVATE).then(**after)
