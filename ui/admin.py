"""The Admin tab: users and roles, the audit log with filters, pages and CSV export.

Hiding the tab from staff is courtesy; the control is that every handler resolves the user
from gr.Request and the Accounts methods refuse anyone but an admin.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.auth.accounts import (
    AUDIT_OUTCOMES,
    AUDIT_PAGE_SIZE,
    ROLES,
    AuditFilter,
    User,
)
from backend.services import AuditEntry, UserRecord
from ui import admission_panel, limits_panel
from ui.common import PRIVATE, acting_user, guarded

if TYPE_CHECKING:
    from backend.services import Services

USER_HEADERS = ["Name", "Role", "Status", "Created (UTC)", "Failed logins"]
AUDIT_HEADERS = ["When (UTC)", "Who", "Action", "Target", "Outcome", "Detail"]
# Actions written today; the field also takes any other action name (model.*, admission.*).
KNOWN_ACTIONS = [
    "login",
    "logout",
    "user.add",
    "user.role",
    "user.disable",
    "user.enable",
    "user.passwd",
    "user.list",
    "audit.read",
    "audit.export",
]
_ANY = ("Any", "")


def user_rows(records: list[UserRecord], now: datetime | None = None) -> list[list[Any]]:
    """The users table: never the password hash."""
    now = now or datetime.now().astimezone()
    rows = []
    for record in records:
        status = "disabled" if record.disabled else "active"
        if record.locked_until and datetime.fromisoformat(record.locked_until) > now:
            status = f"locked until {_when(record.locked_until)}"
        rows.append(
            [record.name, record.role, status, _when(record.created_at), record.failed_logins]
        )
    return rows


def audit_rows(entries: tuple[AuditEntry, ...]) -> list[list[str]]:
    return [[_when(e.at), e.actor, e.action, e.target, e.outcome, e.detail] for e in entries]


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _admin(
    services: Services, request: gr.Request | None, what: str, action: str, target: Any = ""
) -> User:
    """The signed-in admin, or PermissionDenied (a toast, and a `refused` audit row)."""
    user = acting_user(services, request)
    return services.accounts.require_admin(user, what, action=action, target=str(target or ""))


def build(services: Services, demo: gr.Blocks, tab: gr.Tab | None = None) -> None:
    """Create the Admin tab's components inside the current gr.Tab and wire their events.

    `tab`, when given, is shown on page load for admins only (create it with visible=False).
    """
    audit_page = gr.State(1)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gr.Markdown("### Users")
            users_table = gr.Dataframe(
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
                add_btn = gr.Button("Add user", variant="primary", elem_id="add-user")
            with gr.Accordion("Change a user", open=True):
                who = gr.Dropdown(
                    label="User", choices=[], allow_custom_value=True, elem_id="manage-user"
                )
                role = gr.Radio(list(ROLES), value="staff", label="Role")
                with gr.Row():
                    role_btn = gr.Button("Change role", elem_id="change-role")
                    disable_btn = gr.Button("Disable", variant="stop", elem_id="disable-user")
                    enable_btn = gr.Button("Enable / unlock", elem_id="enable-user")
                password = gr.Textbox(label="New password", type="password")
                passwd_btn = gr.Button("Set password", elem_id="set-password")

    gr.Markdown("### Audit log")
    with gr.Row(equal_height=True, elem_classes=["audit-filters"]):
        f_actor = gr.Textbox(label="Who", placeholder="any user", elem_id="audit-actor")
        f_action = gr.Dropdown(
            [_ANY, *KNOWN_ACTIONS],
            value="",
            allow_custom_value=True,
            label="Action",
            elem_id="audit-action",
        )
        f_outcome = gr.Dropdown(
            [_ANY, *AUDIT_OUTCOMES], value="", label="Outcome", elem_id="audit-outcome"
        )
        f_since = gr.DateTime(
            include_time=False, type="string", label="Since (UTC)", elem_id="audit-since"
        )
        filter_btn = gr.Button("Apply filters", scale=0, min_width=140, elem_id="audit-apply")
    audit_table = gr.Dataframe(
        headers=AUDIT_HEADERS,
        value=[],
        interactive=False,
        wrap=True,
        elem_id="audit-table",
        max_height=600,
    )
    with gr.Row(equal_height=True, elem_classes=["pager"]):
        newer_btn = gr.Button("‹ Newer", size="sm", scale=0, elem_id="audit-newer")
        page_label = gr.Markdown("", elem_classes=["page-label"], elem_id="audit-page")
        older_btn = gr.Button("Older ›", size="sm", scale=0, elem_id="audit-older")
        export_btn = gr.Button("Export CSV", size="sm", scale=0, elem_id="audit-export")
    export_file = gr.File(
        label="Audit log CSV", visible=False, interactive=False, elem_id="audit-csv"
    )

    with gr.Accordion("Admission policy", open=False, elem_id="admission-slot"):
        admission_panel.build(services, demo)  # its handlers check the role themselves
    with gr.Accordion("Limits and quotas", open=False, elem_id="limits-slot"):
        limits_panel.build(services, demo)  # its handlers check the role themselves

    filters = [f_actor, f_action, f_outcome, f_since]
    view_outputs = [users_table, who, audit_table, page_label, audit_page]

    def view(admin: User, actor: str, action: str, outcome: str, since: str, page: int):
        """Fresh users table, user picker and one audit page, as the view outputs."""
        records = services.accounts.list_users(admin)
        shown = services.accounts.audit_log(
            admin, _filter(actor, action, outcome, since), page, AUDIT_PAGE_SIZE
        )
        if not shown.entries and shown.page > 1:  # past the end (rows went away): last page
            return view(admin, actor, action, outcome, since, shown.page - 1)
        first = (shown.page - 1) * AUDIT_PAGE_SIZE + 1 if shown.entries else 0
        last = first + len(shown.entries) - 1 if shown.entries else 0
        more = " · more ›" if shown.has_next else ""
        label = f"Page {shown.page} · entries {first}–{last}{more}"
        return (
            user_rows(records),
            gr.Dropdown(choices=[r.name for r in records]),
            audit_rows(shown.entries),
            label,
            shown.page,
        )

    # -- page load: the tab and its data for admins only ------------------------------------

    @guarded
    def admin_tab_load(request: gr.Request):
        user = services.accounts.resolve(getattr(request, "username", None))
        blank = ([], gr.Dropdown(choices=[]), [], "", 1)
        if user is None or not user.is_admin:
            return (gr.Tab(visible=False), *blank) if tab is not None else blank
        shown = view(user, "", "", "", "", 1)
        return (gr.Tab(visible=True), *shown) if tab is not None else shown

    load_outputs = [tab, *view_outputs] if tab is not None else view_outputs
    demo.load(admin_tab_load, None, load_outputs, api_name="admin_tab_load", **PRIVATE)

    # -- users ------------------------------------------------------------------------------

    @guarded
    def admin_add_user(name, secret, new, actor, action, outcome, since, page, request: gr.Request):
        admin = _admin(services, request, "add users", "user.add", name)
        added = services.accounts.add_user(admin, (name or "").strip(), secret or "", new)
        gr.Info(f"Added {added.role} '{escape(added.name)}'.")  # toasts render HTML
        return ("", "", *view(admin, actor, action, outcome, since, page))

    @guarded
    def admin_set_role(name, new, actor, action, outcome, since, page, request: gr.Request):
        admin = _admin(services, request, "change roles", "user.role", name)
        services.accounts.set_role(admin, _chosen(name), new)
        gr.Info(f"'{escape(name)}' is now {escape(new)}.")
        return view(admin, actor, action, outcome, since, page)

    def switch(disabled: bool):
        def run(name, actor, action, outcome, since, page, request: gr.Request):
            what = "disable users" if disabled else "enable users"
            action = "user.disable" if disabled else "user.enable"
            admin = _admin(services, request, what, action, name)
            services.accounts.set_disabled(admin, _chosen(name), disabled)
            gr.Info(f"'{escape(name)}' is {'disabled' if disabled else 'enabled'}.")
            return view(admin, actor, action, outcome, since, page)

        return guarded(run)

    @guarded
    def admin_set_password(name, secret, actor, action, outcome, since, page, request: gr.Request):
        admin = _admin(services, request, "set passwords", "user.passwd", name)
        services.accounts.set_password(admin, _chosen(name), secret or "")
        gr.Info(f"Password set for '{escape(name)}'.")
        return ("", *view(admin, actor, action, outcome, since, page))

    state = [*filters, audit_page]
    add_btn.click(
        admin_add_user,
        [new_name, new_password, new_role, *state],
        [new_name, new_password, *view_outputs],
        api_name="admin_add_user",
        **PRIVATE,
    )
    role_btn.click(
        admin_set_role, [who, role, *state], view_outputs, api_name="admin_set_role", **PRIVATE
    )
    disable_btn.click(
        switch(True), [who, *state], view_outputs, api_name="admin_disable_user", **PRIVATE
    )
    enable_btn.click(
        switch(False), [who, *state], view_outputs, api_name="admin_enable_user", **PRIVATE
    )
    passwd_btn.click(
        admin_set_password,
        [who, password, *state],
        [password, *view_outputs],
        api_name="admin_set_password",
        **PRIVATE,
    )

    # -- audit log --------------------------------------------------------------------------

    def audit_at(step: int | None):
        def run(actor, action, outcome, since, page, request: gr.Request):
            admin = _admin(services, request, "read the audit log", "audit.read")
            return view(admin, actor, action, outcome, since, 1 if step is None else page + step)

        return guarded(run)

    filter_btn.click(audit_at(None), state, view_outputs, api_name="admin_audit_filter", **PRIVATE)
    f_actor.submit(audit_at(None), state, view_outputs, api_name="admin_audit_actor", **PRIVATE)
    newer_btn.click(audit_at(-1), state, view_outputs, api_name="admin_audit_newer", **PRIVATE)
    older_btn.click(audit_at(+1), state, view_outputs, api_name="admin_audit_older", **PRIVATE)

    @guarded
    def admin_audit_export(actor, action, outcome, since, request: gr.Request):
        admin = _admin(services, request, "export the audit log", "audit.export")
        text = services.accounts.audit_csv(admin, _filter(actor, action, outcome, since))
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(tempfile.mkdtemp(prefix="hearth-audit-")) / f"hearth-audit-{stamp}.csv"
        path.write_text(text, encoding="utf-8")
        return gr.File(value=str(path), visible=True)

    export_btn.click(
        admin_audit_export, filters, export_file, api_name="admin_audit_export", **PRIVATE
    )


def _filter(actor: Any, action: Any, outcome: Any, since: Any) -> AuditFilter:
    return AuditFilter(
        actor=str(actor or ""),
        action=str(action or ""),
        outcome=str(outcome or ""),
        since=str(since or ""),
    )


def _chosen(name: Any) -> str:
    if not name:
        raise ValueError("Pick a user first.")
    return str(name)
