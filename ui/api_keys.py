"""The API tab: your personal keys for Hearth's OpenAI-compatible API (/v1).

Make a key with a name (shown once), see your keys (name, prefix, made, last used, revoked) and
revoke one. Admins see everyone's keys, may revoke any, and switch API access per role. Every
check is in services.api_keys, whichever way a call arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.auth import ROLES, ApiKeyInfo, User
from ui.common import PRIVATE, acting_user, guarded

if TYPE_CHECKING:
    from backend.services import Services

COLUMNS = ["id", "owner", "name", "key", "made (UTC)", "last used (UTC)", "state"]
HOW_TO = (
    "Use a key with any OpenAI client: base URL **`http://<this host>:<port>/v1`**, the key as "
    "the API key. Replies count against your limits and usage like the page's; they are not "
    'kept in your chats unless the request says `"store": true`. See the README, '
    '"Use Hearth from your tools".'
)


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else "never"


def key_rows(keys: list[ApiKeyInfo]) -> list[list[Any]]:
    return [[k.id, k.user, k.name, f"{k.prefix}…", _when(k.created_at), _when(k.last_used_at),
             "active" if k.active else f"revoked {_when(k.revoked_at)}"]
            for k in keys]  # fmt: skip


@dataclass(frozen=True)
class ApiKeysView:
    name: gr.Textbox
    create_btn: gr.Button
    secret: gr.Textbox
    keys: gr.Dataframe
    key_id: gr.Textbox
    revoke_btn: gr.Button
    status: gr.Markdown
    access: gr.CheckboxGroup
    access_btn: gr.Button


def layout() -> ApiKeysView:
    gr.Markdown(HOW_TO)
    with gr.Row():
        name = gr.Textbox(label="New key's name", placeholder="e.g. laptop editor", scale=3)
        create_btn = gr.Button("Make key", variant="primary", scale=1)
    secret = gr.Textbox(label="Your new key: copy it now, it is shown only once",
                        visible=False, interactive=False, buttons=["copy"])  # fmt: skip
    keys = gr.Dataframe(headers=COLUMNS, interactive=False, label="Keys", wrap=True)
    with gr.Row():
        key_id = gr.Textbox(label="Key id to revoke", scale=3)
        revoke_btn = gr.Button("Revoke", variant="stop", scale=1)
    status = gr.Markdown()
    access = gr.CheckboxGroup(list(ROLES), label="Roles allowed to use the API (admins)",
                              visible=False)  # fmt: skip
    access_btn = gr.Button("Save API access", visible=False)
    return ApiKeysView(name, create_btn, secret, keys, key_id, revoke_btn, status, access,
                       access_btn)  # fmt: skip


class ApiKeyHandlers:
    """Signed-in user in, plain values out (the tab's events call these)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _rows(self, user: User) -> list[list[Any]]:
        keys = self.services.api_keys
        return key_rows(keys.list_all(user) if user.is_admin else keys.list_own(user))

    def api_keys_open(self, request: gr.Request) -> tuple[Any, Any, Any]:
        user = acting_user(self.services, request)
        access = self.services.api_keys.role_access()
        shown = [role for role, on in access.items() if on]
        admin = user.is_admin
        return self._rows(user), gr.update(value=shown, visible=admin), gr.update(visible=admin)

    def api_key_create(self, name: str, request: gr.Request) -> tuple[Any, Any, str, str]:
        user = acting_user(self.services, request)
        made = self.services.api_keys.create(user, name)
        note = f"Made key **{made.info.prefix}…** ({made.info.name}). Copy it now."
        return gr.update(value=made.secret, visible=True), self._rows(user), "", note

    def api_key_revoke(self, key_id: str, request: gr.Request) -> tuple[Any, str]:
        user = acting_user(self.services, request)
        revoked = self.services.api_keys.revoke(user, key_id)
        note = f"Revoked key **{revoked.prefix}…** ({revoked.name}) of {revoked.user}."
        return self._rows(user), note

    def api_access_save(self, roles: list[str] | None, request: gr.Request) -> str:
        user = acting_user(self.services, request)
        chosen = roles if isinstance(roles, list) else []
        access: dict[str, bool] = {}
        for role in ROLES:
            access = self.services.api_keys.set_role_access(user, role, role in chosen)
        on = [role for role, allowed in access.items() if allowed] or ["nobody"]
        return f"API access: {', '.join(on)}."


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the API tab's components inside the current gr.Tab and wire their events."""
    view = layout()
    handlers = ApiKeyHandlers(services)
    demo.load(guarded(handlers.api_keys_open), None, [view.keys, view.access, view.access_btn],
              api_name="api_keys_open", **PRIVATE)  # fmt: skip
    view.create_btn.click(guarded(handlers.api_key_create), view.name,
                          [view.secret, view.keys, view.name, view.status],
                          api_name="api_key_create", **PRIVATE)  # fmt: skip
    view.revoke_btn.click(guarded(handlers.api_key_revoke), view.key_id, [view.keys, view.status],
                          api_name="api_key_revoke", **PRIVATE)  # fmt: skip
    view.access_btn.click(guarded(handlers.api_access_save), view.access, view.status,
                          api_name="api_access_save", **PRIVATE)  # fmt: skip
