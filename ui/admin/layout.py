"""The Admin tab's components: users and their forms, the audit log, the admission panel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backend.auth import AUDIT_OUTCOMES, ROLES
from ui.admin.render import AUDIT_HEADERS, USER_HEADERS

# Actions written today; the field also takes any other action name (model.*, admission.*).
KNOWN_ACTIONS = ["login", "logout", "user.add", "user.role", "user.disable", "user.enable",
                 "user.passwd", "user.list", "audit.read", "audit.export"]  # fmt: skip
_ANY = ("Any", "")


@dataclass(frozen=True)
class UserForms:
    table: gr.Dataframe
    new_name: gr.Textbox
    new_password: gr.Textbox
    new_role: gr.Radio
    add: gr.Button
    who: gr.Dropdown  # the user the "Change a user" buttons act on
    role: gr.Radio
    set_role: gr.Button
    disable: gr.Button
    enable: gr.Button
    password: gr.Textbox
    set_password: gr.Button


@dataclass(frozen=True)
class AuditControls:
    page: gr.State  # the page shown, 1 = newest
    actor: gr.Textbox
    action: gr.Dropdown
    outcome: gr.Dropdown
    since: gr.DateTime
    apply: gr.Button
    table: gr.Dataframe
    newer: gr.Button
    page_label: gr.Markdown
    older: gr.Button
    export: gr.Button
    export_file: gr.File

    @property
    def filters(self) -> list[Any]:
        return [self.actor, self.action, self.outcome, self.since]


@dataclass(frozen=True)
class AdminLayout:
    users: UserForms
    audit: AuditControls

    @property
    def view_outputs(self) -> list[Any]:
        """In the order of wiring.view_outputs."""
        return [self.users.table, self.users.who, self.audit.table, self.audit.page_label,
                self.audit.page]  # fmt: skip

    @property
    def query_inputs(self) -> list[Any]:
        """The filters and the page: what wiring.audit_query reads."""
        return [*self.audit.filters, self.audit.page]


def layout(
    admission_panel: Callable[[], None],
    limits_panel: Callable[[], None],
    engines_panel: Callable[[], None] | None = None,
) -> AdminLayout:
    """Create the tab's components inside the current gr.Tab; the panels fill their slots."""
    page = gr.State(1)
    users = _user_forms()
    gr.Markdown("### Audit log")
    audit = _audit_controls(page)
    with gr.Accordion("Admission policy", open=False, elem_id="admission-slot"):
        admission_panel()
    with gr.Accordion("Limits and quotas", open=False, elem_id="limits-slot"):
        limits_panel()
    if engines_panel is not None:
        with gr.Accordion("Engines", open=False, elem_id="engines-slot"):
            engines_panel()
    return AdminLayout(users, audit)


def _user_forms() -> UserForms:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gr.Markdown("### Users")
            table = gr.Dataframe(
                headers=USER_HEADERS,
                value=[],  # filled on load for admins: /config is readable by every user
                interactive=False,
                elem_id="users-table",
                max_height=420,
            )
        with gr.Column(scale=2):
            with gr.Accordion("Add a user", open=True):
                new_name = gr.Textbox(label="Name", elem_id="new-user-name")
                new_password = gr.Textbox(
                    label="Password (8+ characters)", type="password", elem_id="new-user-password"
                )
                new_role = gr.Radio(
                    list(ROLES), value="staff", label="Role", elem_id="new-user-role"
                )
                add = gr.Button("Add user", variant="primary", elem_id="add-user")
            with gr.Accordion("Change a user", open=True):
                # Nobody is picked at first: each button here changes an account, and a name
                # chosen for the admin (the first user is often themself) invites changing the
                # wrong one. The choices arrive with the tab's load; picking shows their role.
                who = gr.Dropdown(label="User", choices=[], value=None, allow_custom_value=True,
                                  info="Pick whose account to change.",
                                  elem_id="manage-user")  # fmt: skip
                role = gr.Radio(list(ROLES), value="staff", label="Role", elem_id="manage-role")
                with gr.Row():
                    set_role = gr.Button("Change role", elem_id="change-role")
                    disable = gr.Button("Disable", variant="stop", elem_id="disable-user")
                    enable = gr.Button("Enable / unlock", elem_id="enable-user")
                password = gr.Textbox(label="New password", type="password")
                set_password = gr.Button("Set password", elem_id="set-password")
    return UserForms(table, new_name, new_password, new_role, add, who, role, set_role,
                     disable, enable, password, set_password)  # fmt: skip


def _audit_controls(page: gr.State) -> AuditControls:
    with gr.Row(equal_height=True, elem_classes=["audit-filters"]):
        actor = gr.Textbox(label="Who", placeholder="any user", elem_id="audit-actor")
        action = gr.Dropdown([_ANY, *KNOWN_ACTIONS], value="", allow_custom_value=True,
                             label="Action", elem_id="audit-action")  # fmt: skip
        outcome = gr.Dropdown(
            [_ANY, *AUDIT_OUTCOMES], value="", label="Outcome", elem_id="audit-outcome"
        )
        since = gr.DateTime(
            include_time=False, type="string", label="Since (UTC)", elem_id="audit-since"
        )
        apply = gr.Button("Apply filters", scale=0, min_width=140, elem_id="audit-apply")
    table = gr.Dataframe(headers=AUDIT_HEADERS, value=[], interactive=False, wrap=True,
                         elem_id="audit-table", max_height=600)  # fmt: skip
    with gr.Row(equal_height=True, elem_classes=["pager"]):
        newer = gr.Button("‹ Newer", size="sm", scale=0, elem_id="audit-newer")
        page_label = gr.Markdown("", elem_classes=["page-label"], elem_id="audit-page")
        older = gr.Button("Older ›", size="sm", scale=0, elem_id="audit-older")
        export = gr.Button("Export CSV", size="sm", scale=0, elem_id="audit-export")
    export_file = gr.File(
        label="Audit log CSV", visible=False, interactive=False, elem_id="audit-csv"
    )
    return AuditControls(page, actor, action, outcome, since, apply, table, newer, page_label,
                         older, export, export_file)  # fmt: skip
