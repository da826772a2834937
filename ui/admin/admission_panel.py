"""Admission settings (policy, safety margin, and how the engine runs models: slots, default
context, flash attention, KV cache type, as Ollama's environment variables) for the Admin tab.

Admins change them; everyone else sees them read-only. Every change is audited by
ModelService.set_admission_settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from backend.admission.settings import ENGINE_ENV_VARS, PLACEMENTS, POLICIES, AdmissionSettings
from backend.estimate.memory import KV_CACHE_TYPES
from ui.common import PRIVATE, acting_user, guarded

if TYPE_CHECKING:
    from backend.services import Services

POLICY_HELP = {
    "strict": "only loads that fit entirely in GPU memory, keeping the safety margin free",
    "balanced": "partial offload or CPU only when RAM holds the rest, with a speed warning",
    "relaxed": "any load that GPU memory and RAM together can hold",
    "off": "no checks: every load goes to the engine",
}


PLACEMENT_HELP = {
    "spread": "an admin's load goes to the engine host with the most GPU memory left after it",
    "pack": "an admin's load goes to the fullest engine host that still admits it",
}


def policy_help(policy: str | None = None) -> str:
    lines = [
        f"- **{name}**{' (current)' if name == policy else ''}: {POLICY_HELP[name]}"
        for name in POLICIES
    ]
    return "\n".join(lines)


def describe(settings: AdmissionSettings) -> str:
    return (
        f"Policy **{settings.policy}**, safety margin **{settings.describe_margin()}** kept free "
        f"on the GPU and in RAM, KV cache **{settings.kv_cache_type}**, placement "
        f"**{settings.placement}** ({PLACEMENT_HELP[settings.placement]}). The engine runs "
        f"**{settings.num_parallel}** slot(s) of num_ctx tokens per model: "
        f"`{settings.describe_engine()}`."
    )


def _whole(value: object) -> int:
    """A form's number as an int; anything else becomes -1, which validation then names."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return -1
    return int(value) if float(value).is_integer() else -1


_Form = tuple[
    gr.Radio, gr.Number, gr.Radio, gr.Dropdown, gr.Number, gr.Number, gr.Checkbox, gr.Radio,
    gr.Markdown, gr.Button, gr.Markdown,
]  # fmt: skip


def _form() -> _Form:
    """The panel's components: policy and margin, the engine's settings, save, help, status.
    The fields are locked and Save hidden until the page-load update fills them (and unlocks
    them for an admin), so it can never land over what an admin typed or saved before it."""
    gr.Markdown(
        "### Load admission\nBefore a model loads, its memory estimate is checked against "
        "what is free now (other GPU processes, loaded models and loads in flight included)."
    )
    with gr.Row():
        policy = gr.Radio(
            list(POLICIES), label="Policy", interactive=False, elem_id="admission-policy"
        )
        margin = gr.Number(
            label="Safety margin", minimum=0, interactive=False, elem_id="admission-margin"
        )
        unit = gr.Radio(
            ["MiB", "%"], label="Margin unit", interactive=False, elem_id="admission-unit"
        )
        kv = gr.Dropdown(
            list(KV_CACHE_TYPES),
            label=f"KV cache type the engine runs with ({ENGINE_ENV_VARS['kv_cache_type']})",
            interactive=False,
            elem_id="admission-kv",
        )
    with gr.Row():
        parallel = gr.Number(
            label=f"Parallel slots per model ({ENGINE_ENV_VARS['num_parallel']})",
            precision=0, interactive=False, elem_id="admission-parallel",
        )  # fmt: skip
        context = gr.Number(
            label=f"Default context length ({ENGINE_ENV_VARS['context_length']})",
            precision=0, interactive=False, elem_id="admission-context",
        )  # fmt: skip
        flash = gr.Checkbox(
            label=f"Flash attention ({ENGINE_ENV_VARS['flash_attention']}=1)",
            interactive=False,
            elem_id="admission-flash",
        )
        placement = gr.Radio(
            list(PLACEMENTS), label="Placement on a pool of engines (spread or pack)",
            interactive=False, elem_id="admission-placement",
        )  # fmt: skip
    explain = gr.Markdown(policy_help(), elem_id="admission-help")
    save = gr.Button("Save admission settings", variant="primary", visible=False,
                     elem_id="admission-save")  # fmt: skip
    status = gr.Markdown("", elem_id="admission-status")
    return policy, margin, unit, kv, parallel, context, flash, placement, explain, save, status


def build(services: Services, demo: gr.Blocks) -> None:
    """The admission panel's components and events, inside whatever block the caller opened."""
    policy, margin, unit, kv, parallel, context, flash, placement, explain, save, status = _form()

    @guarded
    def admission_panel_load(request: gr.Request):
        user = acting_user(services, request)
        current = services.models.admission_settings()
        note = describe(current) + ("" if user.is_admin else " Only an admin can change them.")
        values = (current.policy, current.margin, current.margin_unit, current.kv_cache_type,
                  current.num_parallel, current.context_length, current.flash_attention,
                  current.placement)  # fmt: skip
        fields = [gr.update(value=v, interactive=user.is_admin) for v in values]
        return (*fields, gr.update(visible=user.is_admin), policy_help(current.policy), note)

    @guarded
    def admission_save(
        policy_value, margin_value, unit_value, kv_value, parallel_value, context_value,
        flash_value, placement_value, request: gr.Request,
    ):  # fmt: skip
        user = acting_user(services, request)
        values = {
            "policy": policy_value or "",
            "margin": float(margin_value if margin_value is not None else -1),
            "margin_unit": unit_value or "",
            "kv_cache_type": kv_value or "",
            "num_parallel": _whole(parallel_value),
            "context_length": _whole(context_value),
            "flash_attention": flash_value if isinstance(flash_value, bool) else None,
            "placement": placement_value or "",
        }
        services.models.set_admission_settings(user, values)
        current = services.models.admission_settings()
        gr.Info("Admission settings saved.")
        return policy_help(current.policy), f"Saved. {describe(current)}"

    outputs = [policy, margin, unit, kv, parallel, context, flash, placement, save, explain,
               status]  # fmt: skip
    demo.load(admission_panel_load, None, outputs, **PRIVATE)
    inputs = [policy, margin, unit, kv, parallel, context, flash, placement]
    save.click(admission_save, inputs, [explain, status], **PRIVATE)
