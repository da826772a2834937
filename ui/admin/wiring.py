"""The Admin tab's events: the same api_names, all private, each through AdminHandlers.

Event functions take what Gradio sends, positionally (the request is injected only into a
positional parameter annotated gr.Request); AdminHandlers turns it into checked values."""

from __future__ import annotations

from html import escape
from typing import Any

import gradio as gr

from ui.admin.handlers import AdminHandlers, AdminView, AuditQuery, Done, audit_query
from ui.admin.layout import AdminLayout
from ui.common import PRIVATE, guarded


def view_outputs(view: AdminView) -> tuple[Any, ...]:
    """(users table, user picker, audit table, page label, page) as Gradio takes them. The
    picker gets its choices and keeps its value: nobody is picked for the admin (see layout)."""
    picker = gr.Dropdown(choices=view.user_names)
    return (view.user_rows, picker, view.audit_rows, view.page_label, view.page)


def blank_outputs() -> tuple[Any, ...]:
    return ([], gr.Dropdown(choices=[]), [], "", 1)


def done_outputs(done: Done) -> tuple[Any, ...]:
    gr.Info(escape(done.notice, quote=False))  # toasts render HTML, and names are typed text
    return view_outputs(done.view)


def wire(handlers: AdminHandlers, view: AdminLayout, demo: gr.Blocks, tab: gr.Tab | None) -> None:
    _wire_load(handlers, view, demo, tab)
    _wire_users(handlers, view)
    _wire_audit(handlers, view)


def _wire_load(
    handlers: AdminHandlers, view: AdminLayout, demo: gr.Blocks, tab: gr.Tab | None
) -> None:
    """On page load: the tab and its data for admins only."""

    @guarded
    def admin_tab_load(request: gr.Request) -> tuple[Any, ...]:
        shown = handlers.load(request)
        values = blank_outputs() if shown is None else view_outputs(shown)
        return values if tab is None else (gr.Tab(visible=shown is not None), *values)

    outputs = view.view_outputs if tab is None else [tab, *view.view_outputs]
    demo.load(admin_tab_load, None, outputs, api_name="admin_tab_load", **PRIVATE)


def _wire_users(handlers: AdminHandlers, view: AdminLayout) -> None:
    users, query_inputs, outputs = view.users, view.query_inputs, view.view_outputs

    @guarded
    def add(name, secret, role, actor, action, outcome, since, page, request: gr.Request):
        query = audit_query(actor, action, outcome, since, page)
        done = handlers.add_user(request, name, secret, role, query)
        return ("", "", *done_outputs(done))

    @guarded
    def set_role(name, role, actor, action, outcome, since, page, request: gr.Request):
        query = audit_query(actor, action, outcome, since, page)
        return done_outputs(handlers.set_role(request, name, role, query))

    @guarded
    def disable(name, actor, action, outcome, since, page, request: gr.Request):
        query = audit_query(actor, action, outcome, since, page)
        return done_outputs(handlers.set_disabled(request, name, True, query))

    @guarded
    def enable(name, actor, action, outcome, since, page, request: gr.Request):
        query = audit_query(actor, action, outcome, since, page)
        return done_outputs(handlers.set_disabled(request, name, False, query))

    @guarded
    def set_password(name, secret, actor, action, outcome, since, page, request: gr.Request):
        query = audit_query(actor, action, outcome, since, page)
        done = handlers.set_password(request, name, secret, query)
        return ("", *done_outputs(done))

    @guarded
    def admin_pick_user(name, request: gr.Request):
        role = handlers.user_role(request, name)
        return gr.skip() if role is None else role

    users.who.input(admin_pick_user, [users.who], [users.role], **PRIVATE)
    forms = [users.new_name, users.new_password, users.new_role]
    users.add.click(add, [*forms, *query_inputs], [users.new_name, users.new_password, *outputs],
                    api_name="admin_add_user", **PRIVATE)  # fmt: skip
    users.set_role.click(set_role, [users.who, users.role, *query_inputs], outputs,
                         api_name="admin_set_role", **PRIVATE)  # fmt: skip
    users.disable.click(disable, [users.who, *query_inputs], outputs,
                        api_name="admin_disable_user", **PRIVATE)  # fmt: skip
    users.enable.click(enable, [users.who, *query_inputs], outputs,
                       api_name="admin_enable_user", **PRIVATE)  # fmt: skip
    users.set_password.click(set_password, [users.who, users.password, *query_inputs],
                             [users.password, *outputs], api_name="admin_set_password",
                             **PRIVATE)  # fmt: skip


def _wire_audit(handlers: AdminHandlers, view: AdminLayout) -> None:
    audit, query_inputs, outputs = view.audit, view.query_inputs, view.view_outputs

    def at(step: int | None) -> Any:
        """Page 1 of the filters as they are now (None), or `step` pages from the one shown."""

        def run(actor, action, outcome, since, page, request: gr.Request):
            asked = audit_query(actor, action, outcome, since, page)
            asked = AuditQuery(asked.filters) if step is None else asked.moved(step)
            return view_outputs(handlers.audit_page(request, asked))

        return guarded(run)

    audit.apply.click(at(None), query_inputs, outputs, api_name="admin_audit_filter", **PRIVATE)
    audit.actor.submit(at(None), query_inputs, outputs, api_name="admin_audit_actor", **PRIVATE)
    audit.newer.click(at(-1), query_inputs, outputs, api_name="admin_audit_newer", **PRIVATE)
    audit.older.click(at(+1), query_inputs, outputs, api_name="admin_audit_older", **PRIVATE)

    @guarded
    def export(actor, action, outcome, since, request: gr.Request) -> gr.File:
        path = handlers.export_audit(request, audit_query(actor, action, outcome, since).filters)
        return gr.File(value=str(path), visible=True)

    audit.export.click(
        export, audit.filters, audit.export_file, api_name="admin_audit_export", **PRIVATE
    )
