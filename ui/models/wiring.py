"""The Models tab's events, all private, each through ModelsHandlers. The function names are the
events' api_names (models_tab_load, models_catalog, models_select, models_refresh, models_pull,
models_pulled, models_cancel_pull, models_check, models_delete_ask, models_delete, models_unload;
the load buttons and Keep name theirs). Pulls and loads run two at a time at most; Cancel is never
queued.

The Load picker always shows a model when one is installed: the tab's load picks the first; a
refresh keeps what it showed while that is installed; a pull that ends picks the model pulled; a
catalog row that is installed picks itself.

Event functions take what Gradio sends, positionally (the request is injected only into a
positional parameter annotated gr.Request); ModelsHandlers checks the values."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import gradio as gr

from ui.common import PRIVATE, current_tab, guarded
from ui.models.handlers import CatalogPage, ModelLists, ModelsHandlers
from ui.models.layout import ModelsLayout


def list_outputs(lists: ModelLists) -> tuple[Any, ...]:
    """(installed, model picker, loaded, loaded picker, records, notice) as Gradio takes them."""
    up = lists.loaded_names
    return (
        lists.installed_html,
        gr.Dropdown(choices=lists.installed_names, value=lists.picked),
        lists.loaded_html,
        gr.Dropdown(choices=up, value=up[0] if up else None),
        lists.records_html,
        lists.note,
    )


def catalog_outputs(page: CatalogPage) -> tuple[Any, ...]:
    """(machine, catalog table, row tags) as Gradio takes them."""
    return page.machine_html, gr.Dataset(samples=page.samples), page.tags


def wire(handlers: ModelsHandlers, view: ModelsLayout, demo: gr.Blocks) -> None:
    """Wire the tab's events; call inside its gr.Tab (opening the tab shows the lists as they
    are then: a chat, another admin or the engine's own timer may have loaded or unloaded a
    model since the page loaded)."""
    after = _wire_catalog(handlers, view, demo, current_tab())
    _wire_pull(handlers, view)
    _wire_manage(handlers, view, after)


def _wire_catalog(
    handlers: ModelsHandlers, view: ModelsLayout, demo: gr.Blocks, tab: gr.Tab | None
) -> dict[str, Any]:
    """Page load, the catalog and its filters, a row's estimate, Refresh and opening the tab.
    Returns the refresh of the lists that follows every change (as keyword arguments of
    .then)."""
    cat = view.catalog

    @guarded
    def models_catalog(num_ctx, kv_type, family, size, fits, host, request: gr.Request):
        page = handlers.catalog(request, num_ctx, kv_type, family, size, fits, host)
        return catalog_outputs(page)

    @guarded
    def models_tab_load(request: gr.Request):
        is_admin, lists = handlers.tab_load(request)
        shown = gr.update(visible=is_admin)
        hosts = handlers.hosts()  # the pool's engines now (an engine may have been added)
        host = gr.update(choices=hosts, visible=bool(hosts))
        return shown, shown, shown, host, *list_outputs(lists)

    @guarded
    def models_refresh(picked, request: gr.Request):
        return list_outputs(handlers.lists(request, picked))

    @guarded
    def models_select(index, shown, num_ctx, kv_type, host, request: gr.Request):
        html, tag, installed = handlers.select(request, index, shown, num_ctx, kv_type, host)
        return html, tag, gr.skip() if installed is None else installed

    to_catalog = {"fn": models_catalog, "inputs": cat.inputs, "outputs": cat.outputs, **PRIVATE}
    loaded = [*view.admin_groups, cat.host, *view.list_outputs]
    demo.load(models_tab_load, None, loaded, **PRIVATE).then(**to_catalog)
    for control in cat.inputs:
        control.change(**to_catalog)
    cat.table.click(models_select, [cat.table, cat.tags, cat.ctx, cat.kv, cat.host],
                    [cat.detail, view.pull.tag, view.manage.pick], **PRIVATE)  # fmt: skip
    picked = [view.manage.pick]
    view.refresh.click(models_refresh, picked, view.list_outputs, **PRIVATE).then(**to_catalog)
    if tab is not None:
        tab.select(models_refresh, picked, view.list_outputs, **PRIVATE).then(**to_catalog)
    return {"fn": models_refresh, "inputs": picked, "outputs": view.list_outputs, **PRIVATE}


def _wire_pull(handlers: ModelsHandlers, view: ModelsLayout) -> None:
    pull = view.pull

    @guarded
    def models_pulled(tag, picked, request: gr.Request):
        """The lists after a pull; the Load picker shows the model pulled once installed."""
        return list_outputs(handlers.lists(request, tag, picked))

    after = {"fn": models_pulled, "inputs": [pull.tag, view.manage.pick],
             "outputs": view.list_outputs, **PRIVATE}  # fmt: skip

    @guarded
    def models_pull(tag, request: gr.Request, progress=gr.Progress()) -> Iterator[str]:  # noqa: B008
        for step in handlers.pull(request, tag):
            if step.fraction is not None:
                progress(step.fraction, desc=step.desc)
            if step.html is not None:
                yield step.html

    @guarded
    def models_cancel_pull(request: gr.Request) -> None:
        handlers.cancel_pull(request)

    for trigger in (pull.pull.click, pull.tag.submit):
        trigger(models_pull, [pull.tag], [pull.progress], concurrency_limit=2,
                concurrency_id="models-pull", **PRIVATE).then(**after)  # fmt: skip
    pull.cancel.click(models_cancel_pull, None, None, concurrency_limit=None, **PRIVATE)


def _wire_manage(handlers: ModelsHandlers, view: ModelsLayout, after: dict[str, Any]) -> None:
    """Check fit, load (and load anyway), delete with its confirmation, unload."""
    manage = view.manage
    decided = [manage.decision, manage.override]

    @guarded
    def models_check(model, num_ctx, request: gr.Request):
        return handlers.check(request, model, num_ctx), gr.update(visible=False)

    def loader(override: bool) -> Any:
        def run(model, num_ctx, request: gr.Request):
            outcome = handlers.load(request, model, num_ctx, override)
            (gr.Warning if outcome.refused else gr.Info)(escape(outcome.notice))  # toasts: HTML
            return outcome.decision_html, gr.update(visible=outcome.refused)

        return guarded(run)

    @guarded
    def models_delete_ask(model, request: gr.Request):
        return gr.update(visible=True), handlers.delete_ask(request, model)

    @guarded
    def models_delete(model, request: gr.Request):
        gr.Info(escape(handlers.delete(request, model)))
        return gr.update(visible=False)

    @guarded
    def models_unload(model, request: gr.Request) -> None:
        gr.Info(escape(handlers.unload(request, model)))

    manage.check.click(models_check, [manage.pick, manage.ctx], decided, **PRIVATE)
    load_cfg = {"concurrency_limit": 2, "concurrency_id": "models-load", **PRIVATE}
    for button, forced, name in ((manage.load, False, "models_load"),
                                 (manage.override, True, "models_load_override")):  # fmt: skip
        button.click(loader(forced), [manage.pick, manage.ctx], decided,
                     api_name=name, **load_cfg).then(**after)  # fmt: skip
    manage.delete.click(models_delete_ask, [manage.pick], [manage.confirm_row,
                        manage.confirm_text], **PRIVATE)  # fmt: skip
    manage.keep.click(guarded(lambda: gr.update(visible=False)), None, manage.confirm_row,
                      api_name="models_delete_keep", **PRIVATE)  # fmt: skip
    manage.confirm.click(models_delete, [manage.pick], [manage.confirm_row], **PRIVATE).then(
        **after
    )
    view.loaded.unload.click(models_unload, [view.loaded.pick], None, **PRIVATE).then(**after)
