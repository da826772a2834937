"""The API tab: your personal keys for Hearth's OpenAI-compatible API (/v1).

Make a key with a name (shown once), see your keys (name, prefix, made, last used, revoked) and
revoke one, picked from a list of the active keys you may revoke (no key is picked for you).
Admins see everyone's keys, may revoke any, and switch API access per role. Every check is in
services.api_keys, whichever way a call arrives: the list is a convenience, not a control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import gradio as gr

from backend.auth import ROLES, ApiKeyInfo, User
from ui.common import PRIVATE, acting_user, guarded, last_input_from_page

if TYPE_CHECKING:
    from backend.services import Services

COLUMNS = ["id", "owner", "name", "key", "made (UTC)", "last used (UTC)", "state"]
UNKNOWN_BASE = "http://<this host>:<port>/v1"
HOW_TO = (
    "Use a key with any OpenAI client: base URL **`{base}`**, the key as "
    "the API key. Replies count against your limits and usage like the page's; they are not "
    'kept in your chats unless the request says `"store": true`. See the README, '
    '"Use Hearth from your tools".'
)
# The page's own address as the browser sees it (scheme, host, port and any prefix a reverse
# proxy adds), which the server alone cannot know; the API sits beside the page at /v1.
WITH_PAGE_ADDRESS = last_input_from_page("location.origin + location.pathname")
_SAFE_URL_PART = re.compile(r"[A-Za-z0-9.\-_~:/\[\]%@!$&'()*+,;=]*")


def api_base(page_address: Any) -> str:
    """The /v1 base URL beside the page at this address; UNKNOWN_BASE for anything that is not
    a plain http(s) address (the value comes from the page, so from anyone)."""
    if not isinstance(page_address, str) or len(page_address) > 2000:
        return UNKNOWN_BASE
    parts = urlsplit(page_address)
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return UNKNOWN_BASE
    if not (_SAFE_URL_PART.fullmatch(parts.netloc) and _SAFE_URL_PART.fullmatch(path)):
        return UNKNOWN_BASE  # nothing that could end the code span or start markup
    return f"{parts.scheme}://{parts.netloc}{path}/v1"


NO_KEYS = "No API keys yet. Make one above to use Hearth's `/v1` API from scripts and tools."


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else "never"


def key_rows(keys: list[ApiKeyInfo]) -> list[list[Any]]:
    return [[k.id, k.user, k.name, f"{k.prefix}…", _when(k.created_at), _when(k.last_used_at),
             "active" if k.active else f"revoked {_when(k.revoked_at)}"]
            for k in keys]  # fmt: skip


def key_label(key: ApiKeyInfo, user: User) -> str:
    """A key as the revoke list names it: its name and prefix, and its owner when not yours."""
    owner = "" if key.user == user.name else f" ({key.user})"
    return f"{key.name} · {key.prefix}…{owner}"


def revoke_choices(keys: list[ApiKeyInfo], user: User) -> list[tuple[str, int]]:
    """The keys the revoke list offers: the active ones shown to `user`, yours first."""
    active = [k for k in keys if k.active]
    active.sort(key=lambda k: k.user != user.name)  # stable: the table's order within each
    return [(key_label(k, user), k.id) for k in active]


@dataclass(frozen=True)
class KeysShown:
    """The keys table, its empty state and the revoke list, as one update."""

    rows: list[list[Any]]
    choices: list[tuple[str, int]]

    def outputs(self) -> tuple[Any, ...]:
        """(table, empty note, revoke row, revoke list) as Gradio takes them."""
        return (
            gr.update(value=self.rows, visible=bool(self.rows)),
            gr.update(visible=not self.rows),
            gr.update(visible=bool(self.choices)),
            gr.update(choices=self.choices, value=None),
        )


@dataclass(frozen=True)
class ApiKeysView:
    name: gr.Textbox
    create_btn: gr.Button
    secret: gr.Textbox
    keys: gr.Dataframe
    empty: gr.Markdown
    revoke_row: gr.Row
    key_id: gr.Dropdown
    revoke_btn: gr.Button
    status: gr.Markdown
    access: gr.CheckboxGroup
    access_btn: gr.Button
    how_to: gr.Markdown
    page_address: gr.Textbox  # hidden: set by WITH_PAGE_ADDRESS

    @property
    def shown(self) -> list[Any]:
        """In the order of KeysShown.outputs."""
        return [self.keys, self.empty, self.revoke_row, self.key_id]


def layout() -> ApiKeysView:
    how_to = gr.Markdown(HOW_TO.format(base=UNKNOWN_BASE), elem_id="api-how-to")
    page_address = gr.Textbox("", visible=False)
    with gr.Row():
        name = gr.Textbox(label="New key's name", placeholder="e.g. laptop editor", scale=3)
        create_btn = gr.Button("Make key", variant="primary", scale=1)
    secret = gr.Textbox(label="Your new key: copy it now, it is shown only once",
                        visible=False, interactive=False, buttons=["copy"])  # fmt: skip
    keys = gr.Dataframe(headers=COLUMNS, interactive=False, label="Keys", wrap=True,
                        visible=False, elem_id="api-keys-table")  # fmt: skip
    empty = gr.Markdown(NO_KEYS, visible=False, elem_id="api-keys-empty")
    with gr.Row(visible=False, equal_height=True) as revoke_row:
        # No key is picked for you: revoking cannot be undone. Values are key ids; the
        # service checks whose key it is, whatever value arrives.
        key_id = gr.Dropdown([], value=None, label="Key to revoke", allow_custom_value=True,
                             info="Your active keys, by name and start.", scale=3,
                             elem_id="api-key-revoke-pick")  # fmt: skip
        revoke_btn = gr.Button("Revoke", variant="stop", scale=1, elem_id="api-key-revoke")
    status = gr.Markdown(elem_id="api-keys-status")
    access = gr.CheckboxGroup(list(ROLES), label="Roles allowed to use the API (admins)",
                              visible=False)  # fmt: skip
    access_btn = gr.Button("Save API access", visible=False)
    return ApiKeysView(name, create_btn, secret, keys, empty, revoke_row, key_id, revoke_btn,
                       status, access, access_btn, how_to, page_address)  # fmt: skip


class ApiKeyHandlers:
    """Signed-in user in, plain values out (the tab's events call these)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def shown(self, user: User) -> KeysShown:
        """The keys `user` sees (admins: everyone's) and those they may revoke."""
        keys = self.services.api_keys
        listed = keys.list_all(user) if user.is_admin else keys.list_own(user)
        return KeysShown(key_rows(listed), revoke_choices(listed, user))

    def api_keys_open(self, page_address: Any, request: gr.Request) -> tuple[Any, ...]:
        user = acting_user(self.services, request)
        access = self.services.api_keys.role_access()
        on = [role for role, allowed in access.items() if allowed]
        admin = user.is_admin
        return (*self.shown(user).outputs(), gr.update(value=on, visible=admin),
                gr.update(visible=admin), HOW_TO.format(base=api_base(page_address)))  # fmt: skip

    def api_key_create(self, name: str, request: gr.Request) -> tuple[Any, ...]:
        user = acting_user(self.services, request)
        made = self.services.api_keys.create(user, name)
        note = f"Made key **{made.info.prefix}…** ({made.info.name}). Copy it now."
        secret = gr.update(value=made.secret, visible=True)
        return secret, *self.shown(user).outputs(), "", note

    def api_key_revoke(self, key_id: Any, request: gr.Request) -> tuple[Any, ...]:
        """Revoke the picked key; the service refuses (and audits) a key that is not yours."""
        user = acting_user(self.services, request)
        if key_id is None or key_id == "":
            raise ValueError("Pick the key to revoke first.")
        revoked = self.services.api_keys.revoke(user, key_id)
        owner = "" if revoked.user == user.name else f" of {revoked.user}"
        note = f"Revoked key **{revoked.prefix}…** ({revoked.name}){owner}."
        return *self.shown(user).outputs(), note

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
    demo.load(guarded(handlers.api_keys_open), view.page_address,
              [*view.shown, view.access, view.access_btn, view.how_to], js=WITH_PAGE_ADDRESS,
              api_name="api_keys_open", **PRIVATE)  # fmt: skip
    view.create_btn.click(guarded(handlers.api_key_create), view.name,
                          [view.secret, *view.shown, view.name, view.status],
                          api_name="api_key_create", **PRIVATE)  # fmt: skip
    view.revoke_btn.click(guarded(handlers.api_key_revoke), view.key_id,
                          [*view.shown, view.status],
                          api_name="api_key_revoke", **PRIVATE)  # fmt: skip
    view.access_btn.click(guarded(handlers.api_access_save), view.access, view.status,
                          api_name="api_access_save", **PRIVATE)  # fmt: skip
