"""Limits and quotas per role and per user, for the Admin tab (admins only; every change audited).

Built by one line in ui/admin/__init__.py, like admission_panel.py; its handlers check the role in
services.limits, whichever way they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.chat.limits import LABELS, LimitValues, parse_target
from ui.common import PRIVATE, acting_user, guarded, unlocked

if TYPE_CHECKING:
    from backend.services import Services

HEADERS = ["For", *LABELS.values(), "Set by", "When (UTC)"]
ROLE_TARGETS = [("Role: staff", "role:staff"), ("Role: admin", "role:admin")]
FIRST_TARGET = ROLE_TARGETS[0][1]  # what "For" shows at first: the role most people have
HELP = (
    "Turns in flight: a person's turns waiting or running at once. "
    "Requests per minute: turns accepted in the last 60 s. Reply tokens per day: until "
    "00:00 UTC. Leave a field empty for no limit; a user's own value wins over their role's "
    "(save a user with every field empty to go back to the role's)."
)


def limit_rows(records: list[Any]) -> list[list[Any]]:
    """The limits table: one row per role or user that has limits set."""
    rows = []
    for r in records:
        who = f"role {r.role}" if r.role else str(r.user)
        values = [r.turns_in_flight, r.requests_per_minute, r.reply_tokens_per_day]
        shown = ["" if v is None else f"{v:,}" for v in values]
        rows.append([who, *shown, r.updated_by, r.updated_at[:16].replace("T", " ")])
    return rows


def fields_for(records: list[Any], picked: object) -> tuple[str, str, str]:
    """The three fields as set now for the picked role or user ("" where nothing is set)."""
    kind, name = parse_target(picked)
    for r in records:
        if (kind == "role" and r.role == name) or (
            kind == "user" and (r.user or "").lower() == name.lower()
        ):
            values = (r.turns_in_flight, r.requests_per_minute, r.reply_tokens_per_day)
            turns, rate, tokens = ("" if v is None else str(v) for v in values)
            return turns, rate, tokens
    return "", "", ""


def _form() -> tuple[gr.Dataframe, gr.Dropdown, list[gr.Textbox], gr.Button, gr.Markdown]:
    """The panel's components: the table, "For", the three fields, Save and the status line.
    The form is locked until the page-load update has filled it (ui.common.unlocked)."""
    gr.Markdown(HELP)
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, elem_id="limits-table")
    with gr.Row(equal_height=True):
        target = gr.Dropdown(ROLE_TARGETS, value=FIRST_TARGET, label="For", interactive=False,
                             allow_custom_value=True, elem_id="limits-for")  # fmt: skip
        # Text, not gr.Number: a Number shows an unset value as 0, and 0 switches chat off.
        inputs = [
            gr.Textbox(
                label=label, placeholder="no limit", interactive=False, elem_id=f"limits-{name}"
            )
            for name, label in LABELS.items()
        ]
        save = gr.Button("Save limits", variant="primary", scale=0, min_width=140,
                         interactive=False, elem_id="limits-save")  # fmt: skip
    status = gr.Markdown("", elem_id="limits-status")
    return table, target, inputs, save, status


def build(services: Services, demo: gr.Blocks) -> None:
    """The limits panel's components and events, inside whatever block the caller opened."""
    table, target, inputs, save, status = _form()

    def choices(user) -> list[tuple[str, str]]:
        users = services.users.list_users(user)
        return ROLE_TARGETS + [(u.name, f"user:{u.name}") for u in users]

    @guarded
    def limits_panel_load(request: gr.Request):
        """The table, "For" on the first role with its choices, and that role's values: a Save
        straight away keeps what is set rather than clearing it. Only now is the form unlocked,
        so this update can never land over what an admin typed or saved before it came."""
        user = acting_user(services, request)
        if not user.is_admin:  # the Admin tab is hidden from staff; show them nothing here
            return [], gr.Dropdown(choices=[]), "", "", "", gr.skip(), ""
        records = services.limits.table(user)
        picker = unlocked(choices=choices(user), value=FIRST_TARGET)
        fields = [unlocked(value=v) for v in fields_for(records, FIRST_TARGET)]
        return limit_rows(records), picker, *fields, unlocked(), table_note(records)

    @guarded
    def limits_targets(request: gr.Request):
        """The roles and every user now, as "For" is opened: a user added since the page
        loaded is there without a reload. What is picked stays."""
        return gr.Dropdown(choices=choices(acting_user(services, request)))

    @guarded
    def limits_pick(picked, request: gr.Request):
        """Fill the fields with what is set now for the picked role or user."""
        user = acting_user(services, request)
        return fields_for(services.limits.table(user), picked)

    @guarded
    def limits_save(picked, turns, rate, tokens, request: gr.Request):
        user = acting_user(services, request)
        raw = dict(zip(LABELS, (turns, rate, tokens), strict=True))
        values = services.limits.set_for(user, picked, raw)
        gr.Info("Limits saved.")
        name = parse_target(picked)[1]
        return limit_rows(services.limits.table(user)), f"Saved for {name}: {_describe(values)}."

    demo.load(limits_panel_load, None, [table, target, *inputs, save, status], **PRIVATE)
    target.focus(limits_targets, None, target, **PRIVATE)
    target.input(limits_pick, [target], inputs, **PRIVATE)
    save.click(limits_save, [target, *inputs], [table, status], **PRIVATE)


def table_note(records: list[Any]) -> str:
    """What the table means when it is empty: nobody is limited."""
    return "" if records else "No limits are set: nobody's chat is limited."


def _describe(values: LimitValues) -> str:
    return values.describe().replace("not set", "no limit")
