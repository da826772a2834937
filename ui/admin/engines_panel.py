"""Admin → Engines: the engines Hearth serves from (Ollama hosts, OpenAI-compatible servers),
listed, added, changed, removed and tested; admins only, every change audited.

Built by one line in ui/admin/__init__.py, like admission_panel.py; services.engines checks
the role and every value, whichever way an event is called. API keys never reach the page:
the list says only whether one is set, and the key field is always sent back empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.services import EngineForm, EngineRow
from ui.checked_inputs import CheckedDropdown
from ui.common import PRIVATE, acting_user, guarded, inline_markdown, unlocked

if TYPE_CHECKING:
    from backend.auth import User
    from backend.services import EngineConfig, Services

HEADERS = ["Name", "Kind", "Address", "GPU facts", "API key"]
KINDS = ["ollama", "openai"]
HELP = (
    "Each engine is an **Ollama** host or an **OpenAI-compatible** server (vLLM, SGLang, "
    "llama.cpp's `llama-server`). GPU facts: `local` (this machine's GPUs), "
    "`dcgm:http://host:9400/metrics` (the host's DCGM exporter) or `declared:80` (GiB of GPU "
    "memory, minus what the engine reports loaded). A change applies at once, without a "
    "restart: chats in flight on a removed engine finish first. The list saved here wins over "
    "`HEARTH_ENGINES` on every later start; removing the last engine goes back to the default "
    "(Ollama when it answers, else the embedded engine). API keys are kept on the server and "
    "never shown: leave the field empty to keep the stored one."
)


@dataclass(frozen=True)
class EngineFields:
    picked: CheckedDropdown  # the engine that Save, Remove and the blank key refer to
    name: gr.Textbox
    kind: CheckedDropdown
    url: gr.Textbox
    api_key: gr.Textbox
    clear_key: gr.Checkbox
    gpu_facts: gr.Textbox

    @property
    def spec_inputs(self) -> list[Any]:
        return [self.name, self.kind, self.url, self.api_key, self.gpu_facts]


def engine_rows(rows: list[EngineRow]) -> list[list[str]]:
    return [[r.name, r.kind, r.url, r.gpu_facts or "–", "set" if r.api_key_set else ""]
            for r in rows]  # fmt: skip


def _fields() -> EngineFields:
    picked = CheckedDropdown(label="Engine to change (empty: a new one)", choices=[], value=None,
                             allow_custom_value=True, interactive=False,
                             elem_id="engines-pick")  # fmt: skip
    with gr.Row():
        name = gr.Textbox(label="Name", placeholder="gpu-box-2", elem_id="engine-name")
        kind = CheckedDropdown(label="Kind", choices=KINDS, value="ollama", elem_id="engine-kind")
        url = gr.Textbox(label="Address", placeholder="http://10.0.0.2:11434", elem_id="engine-url")
    with gr.Row():
        api_key = gr.Textbox(label="API key (optional; empty keeps the stored one)",
                             type="password", elem_id="engine-key")  # fmt: skip
        clear_key = gr.Checkbox(label="Clear the stored API key", elem_id="engine-clear-key")
        gpu_facts = gr.Textbox(label="GPU facts (optional)", placeholder="local",
                               elem_id="engine-gpu")  # fmt: skip
    return EngineFields(picked, name, kind, url, api_key, clear_key, gpu_facts)


@dataclass(frozen=True)
class EnginesView:
    source: gr.Markdown
    table: gr.Dataframe
    fields: EngineFields
    test: gr.Button
    add: gr.Button
    save: gr.Button
    remove: gr.Button
    status: gr.Markdown


def _view() -> EnginesView:
    gr.Markdown(HELP)
    source = gr.Markdown("", elem_id="engines-source")
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, elem_id="engines-table")
    fields = _fields()
    with gr.Row():  # locked, as the picker, until the page-load update (ui.common.unlocked)
        test = gr.Button("Test connection", interactive=False, elem_id="engine-test")
        add = gr.Button("Add engine", variant="primary", interactive=False, elem_id="engine-add")
        save = gr.Button("Save changes", interactive=False, elem_id="engine-save")
        remove = gr.Button("Remove engine", variant="stop", interactive=False,
                           elem_id="engine-remove")  # fmt: skip
    status = gr.Markdown("", elem_id="engines-status")
    return EnginesView(source, table, fields, test, add, save, remove, status)


def listing(config: EngineConfig, user: User, picked: Any = None) -> tuple[Any, ...]:
    """(table, picker, source) for an admin; `picked` False leaves the picker's value as it is."""
    rows = config.rows(user)
    names = [r.name for r in rows]
    shown = {"value": picked if picked in names else None} if picked is not False else {}
    return (engine_rows(rows), gr.update(choices=names, **shown),
            f"Engines: {inline_markdown(config.source())}.")  # fmt: skip


def changed(config: EngineConfig, user: User, sentence: str, picked: Any) -> tuple[Any, ...]:
    """After a save: the list, the picker, the source, the sentence; the key fields emptied."""
    gr.Info("Engines saved.")
    return (*listing(config, user, picked), inline_markdown(sentence), "", False)


def build(services: Services, demo: gr.Blocks) -> None:
    """The panel's components and events, inside whatever block the caller opened."""
    view, config = _view(), services.engines
    buttons = [view.test, view.add, view.save, view.remove]

    @guarded
    def engines_panel_load(request: gr.Request):
        user = acting_user(services, request)
        if not user.is_admin:  # the Admin tab is hidden from staff; show them nothing here
            return [], gr.update(choices=[]), "", *(gr.skip(),) * len(buttons)
        table, picker, source = listing(config, user, picked=False)
        return table, {**picker, **unlocked()}, source, *(unlocked() for _ in buttons)

    @guarded
    def engines_pick(picked, request: gr.Request):
        """Fill the fields with the picked engine's settings (never its key)."""
        rows = config.rows(acting_user(services, request))
        found = next((r for r in rows if r.name == picked), None)
        if found is None:
            return "", "ollama", "", "", False, ""
        return found.name, found.kind, found.url, "", False, found.gpu_facts

    @guarded
    def engines_test(picked, name, kind, url, key, gpu, request: gr.Request):
        user = acting_user(services, request)
        probed = config.test(user, EngineForm(name, kind, url, key, gpu), original=picked)
        return ("Answered: " if probed.ok else "No answer: ") + inline_markdown(probed.sentence)

    @guarded
    def engines_add(name, kind, url, key, gpu, request: gr.Request):
        user = acting_user(services, request)
        sentence = config.add(user, EngineForm(name, kind, url, key, gpu))
        return changed(config, user, sentence, str(name).strip())

    @guarded
    def engines_save(picked, name, kind, url, key, clear, gpu, request: gr.Request):
        user = acting_user(services, request)
        form = EngineForm(name, kind, url, key, gpu, clear_key=clear)
        return changed(config, user, config.edit(user, picked, form), str(name).strip())

    @guarded
    def engines_remove(picked, request: gr.Request):
        user = acting_user(services, request)
        return changed(config, user, config.remove(user, picked), None)

    f, status = view.fields, view.status
    after_change = [view.table, f.picked, view.source, status, f.api_key, f.clear_key]
    demo.load(engines_panel_load, None, [view.table, f.picked, view.source, *buttons],
              **PRIVATE)  # fmt: skip
    filled = [f.name, f.kind, f.url, f.api_key, f.clear_key, f.gpu_facts]
    f.picked.input(engines_pick, [f.picked], filled, **PRIVATE)
    view.test.click(engines_test, [f.picked, *f.spec_inputs], [status], **PRIVATE)
    view.add.click(engines_add, f.spec_inputs, after_change, **PRIVATE)
    view.save.click(engines_save, [f.picked, f.name, f.kind, f.url, f.api_key, f.clear_key,
                                   f.gpu_facts], after_change, **PRIVATE)  # fmt: skip
    view.remove.click(engines_remove, [f.picked], after_change, **PRIVATE)
