"""Who may call what, over real HTTP against the real app: every endpoint, three callers.

The matrix reads every dependency from GET /config, the way the browser (and gradio_client)
sees them, and calls each by fn_index through queue/join, private ones included: hiding an
endpoint from the API docs is not a control, the server-side check is.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.auth import CLI, LOCKOUT_AFTER_FAILURES, Authentication, UserAdmin
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.gradio_http import GradioHTTP

ADMIN, SIGNED_IN = "admin", "signed-in"
# Every endpoint the app serves, by the api_name Gradio gives it (from the function name, with
# _1, _2 ... for repeats), and who may use it. A new endpoint fails the matrix until it is
# classified here.
ENDPOINTS: dict[str, str] = {
    # Chat tab (ui/chat/): each signed-in user's own conversations.
    "chat_send": SIGNED_IN,  # button
    "chat_send_1": SIGNED_IN,  # Enter
    "chat_regenerate": SIGNED_IN,
    "chat_edit": SIGNED_IN,
    "chat_stop": SIGNED_IN,
    "chat_model_advice": SIGNED_IN,  # what admission would say about the picked model
    "chat_model_advice_1": SIGNED_IN,
    "chat_new": SIGNED_IN,
    **{f"chat_list{suffix}": SIGNED_IN for suffix in ("", "_1", "_2", "_3", "_4")},
    "chat_open": SIGNED_IN,
    "chat_search": SIGNED_IN,
    "chat_open_hit": SIGNED_IN,
    "chat_newer": SIGNED_IN,
    "chat_older": SIGNED_IN,
    "chat_rename": SIGNED_IN,
    "chat_delete_ask": SIGNED_IN,  # show / hide the delete confirmation
    "chat_delete_keep": SIGNED_IN,
    "chat_delete_keep_1": SIGNED_IN,
    "chat_delete": SIGNED_IN,
    "chat_export_md": SIGNED_IN,
    "chat_export_json": SIGNED_IN,
    "chat_import": SIGNED_IN,
    "chat_tab_load": SIGNED_IN,
    "chat": SIGNED_IN,  # the public API
    # Models tab (ui/models/): everyone sees the catalog and fit; admins change models.
    "models_tab_load": SIGNED_IN,
    **{f"models_catalog{s}": SIGNED_IN for s in ("", *(f"_{n}" for n in range(1, 9)))},
    **{f"models_refresh{s}": SIGNED_IN for s in ("", *(f"_{n}" for n in range(1, 6)))},
    "models_pulled": SIGNED_IN,  # the lists after a pull (button), picking the model pulled
    "models_pulled_1": SIGNED_IN,  # (Enter)
    "models_select": SIGNED_IN,
    "models_check": SIGNED_IN,  # what admission would say; loads nothing
    "models_cancel_pull": SIGNED_IN,  # only the caller's own session's pull
    "models_delete_ask": SIGNED_IN,  # shows the confirmation; deleting is models_delete
    "models_delete_keep": SIGNED_IN,
    "models_pull": ADMIN,
    "models_pull_1": ADMIN,
    "models_load": ADMIN,
    "models_load_override": ADMIN,
    "models_delete": ADMIN,
    "models_unload": ADMIN,
    # Admission settings (ui/admission_panel.py, inside the Admin tab).
    "admission_panel_load": SIGNED_IN,
    "admission_save": ADMIN,
    # Limits and quotas (ui/limits_panel.py, inside the Admin tab): the load shows staff nothing.
    "limits_panel_load": SIGNED_IN,
    "limits_pick": ADMIN,
    "limits_targets": ADMIN,
    "limits_save": ADMIN,
    # Engines (ui/admin/engines_panel.py, inside the Admin tab): the load shows staff nothing.
    "engines_panel_load": SIGNED_IN,
    "engines_pick": ADMIN,
    "engines_test": ADMIN,
    "engines_add": ADMIN,
    "engines_save": ADMIN,
    "engines_remove": ADMIN,
    # Usage tab (ui/usage.py): everyone their own; admins anyone's (checked in services.usage).
    "usage_open": SIGNED_IN,
    "usage_show": SIGNED_IN,
    "usage_show_days": SIGNED_IN,
    "usage_show_whose": SIGNED_IN,
    "usage_export": SIGNED_IN,
    # API tab (ui/api_keys.py): everyone their own keys; admins everyone's, and API access.
    "api_keys_open": SIGNED_IN,
    "api_key_create": SIGNED_IN,
    "api_key_revoke": SIGNED_IN,  # own keys only (checked in services.api_keys)
    "api_access_save": ADMIN,
    # Hardware tab (ui/hardware.py): what the box is doing, for everyone signed in.
    "on_tick": SIGNED_IN,
    "on_show": SIGNED_IN,
    # Page header (ui/__init__.py).
    "refresh_header": SIGNED_IN,
    # Admin tab (ui/admin.py): the load shows the tab (and its data) to admins only.
    "admin_tab_load": SIGNED_IN,
    "admin_add_user": ADMIN,
    "admin_pick_user": ADMIN,  # the picked user's role, for the Role choice
    "admin_set_role": ADMIN,
    "admin_disable_user": ADMIN,
    "admin_enable_user": ADMIN,
    "admin_set_password": ADMIN,
    "admin_audit_filter": ADMIN,
    "admin_audit_actor": ADMIN,
    "admin_audit_newer": ADMIN,
    "admin_audit_older": ADMIN,
    "admin_audit_export": ADMIN,
}
PERMISSION = re.compile(r"Only an admin may|Sign in")
SENTINEL = "zed-sentinel"  # a user whose name only an admin's responses may contain
SECRET = "alice-secret-7731"  # text in alice's conversation that nobody else may read
TYPE_DEFAULTS: dict[str, Any] = {
    "textbox": "",
    "number": 0,
    "slider": 0,
    "checkbox": False,
    "chatbot": [],
    "dataset": 0,
    "datetime": "",
}


# -- the app, its users, their clients -----------------------------------------------------


def _db(app: AppProcess) -> Path:
    return app.data_dir / "hearth.db"


@pytest.fixture(scope="module")
def seeded(app_server: AppProcess) -> dict[str, int]:
    """Alice (staff) with one conversation, a sentinel user, a brute-force victim."""
    with Store(_db(app_server)) as store:
        users = UserAdmin(store)
        alice = users.add_user(CLI, "alice", "alice-pass-123", "staff")
        users.add_user(CLI, SENTINEL, "sentinel-pass-1", "staff")
        users.add_user(CLI, "victim", "victim-pass-123", "staff")
        conversation = store.create_conversation(alice.id, title="Alice's plans", model="m")
        store.add_message(alice.id, conversation.id, role="user", content=SECRET)
        store.add_message(alice.id, conversation.id, role="assistant", content="Noted.")
    return {"alice": alice.id, "conversation": conversation.id}


@pytest.fixture(scope="module")
def clients(app_server: AppProcess, seeded: dict[str, int]) -> Iterator[dict[str, GradioHTTP]]:
    opened = {
        "anonymous": GradioHTTP(app_server.url),
        "staff": GradioHTTP(app_server.url, "staff", STAFF_PASSWORD),
        "admin": GradioHTTP(app_server.url, "admin", ADMIN_PASSWORD),
    }
    yield opened
    for client in opened.values():
        client.close()


@pytest.fixture(scope="module")
def config(clients: dict[str, GradioHTTP]) -> dict[str, Any]:
    return clients["admin"].config()


@pytest.fixture(scope="module")
def api_info(clients: dict[str, GradioHTTP]) -> dict[str, Any]:
    response = clients["admin"].client.get("/gradio_api/info")
    response.raise_for_status()
    return response.json()


def backend_dependencies(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dependency with a Python function (.then chains included; js-only ones skipped)."""
    return [d for d in config["dependencies"] if d.get("backend_fn")]


def plausible_inputs(dependency, config, api_info) -> list[Any]:
    """Each input's initial value from the config, else an empty value of its type."""
    components = {c["id"]: c for c in config["components"]}
    parameters = api_info["named_endpoints"].get(f"/{dependency['api_name']}", {})
    values = []
    for index, component_id in enumerate(dependency["inputs"]):
        component = components[component_id]
        if component["type"] == "api":  # a gr.api parameter: its default, else empty text
            parameter = parameters.get("parameters", [])[index]
            values.append(
                parameter["parameter_default"] if parameter["parameter_has_default"] else ""
            )
            continue
        value = component.get("props", {}).get("value")
        values.append(value if value is not None else TYPE_DEFAULTS.get(component["type"]))
    return values


def call(client: GradioHTTP, fn_index: int, data: list[Any]) -> dict[str, Any]:
    """Run an event; what a user would see: refusal status, output, errors and toasts."""
    messages = list(client.stream(fn_index, data))
    last = messages[-1] if messages else {}
    errors = [str(m.get("log") or "") for m in messages if m.get("msg") == "log"]
    if last.get("msg") == "process_completed" and not last.get("success", True):
        errors.append(str((last.get("output") or {}).get("error") or ""))
    return {
        "rejected": last.get("status_code") if last.get("msg") == "rejected" else None,
        "errors": errors,
        "output": last.get("output"),
        "text": json.dumps(messages),
    }


def refused_for_permission(result: dict[str, Any]) -> bool:
    return any(PERMISSION.search(error) for error in result["errors"])


# -- the matrix ------------------------------------------------------------------------------


def test_every_endpoint_is_classified(config: dict[str, Any]) -> None:
    names = [d["api_name"] for d in backend_dependencies(config)]
    unknown = sorted(set(names) - set(ENDPOINTS))
    assert not unknown, f"classify these new endpoints in ENDPOINTS (admin or signed-in): {unknown}"
    assert len(names) == len(set(names))


def test_the_only_documented_api_is_chat(api_info: dict[str, Any]) -> None:
    assert set(api_info["named_endpoints"]) == {"/chat"}
    assert not api_info.get("unnamed_endpoints")


def test_anonymous_callers_are_refused_everywhere(app_server, clients, config, api_info) -> None:
    anonymous = clients["anonymous"]
    for dependency in backend_dependencies(config):
        data = plausible_inputs(dependency, config, api_info)
        result = call(anonymous, dependency["id"], data)
        assert result["rejected"] == 401, (dependency["api_name"], result)
    for path in ("/config", "/gradio_api/info", "/gradio_api/call/chat"):
        response = anonymous.client.request("POST" if "call" in path else "GET", path, json={})
        assert response.status_code == 401, path


def test_staff_is_refused_admin_endpoints_and_served_the_rest(clients, config, api_info) -> None:
    staff = clients["staff"]
    wrong = []
    for dependency in backend_dependencies(config):
        name = dependency["api_name"]
        result = call(staff, dependency["id"], plausible_inputs(dependency, config, api_info))
        refused = result["rejected"] is not None or refused_for_permission(result)
        if refused != (ENDPOINTS[name] == ADMIN):
            wrong.append((name, ENDPOINTS[name], result["rejected"], result["errors"]))
        assert SENTINEL not in result["text"], f"{name} showed staff the user list"
        assert "scrypt$" not in result["text"], f"{name} leaked a password hash"
    assert not wrong


def test_admin_is_never_refused(clients, config, api_info) -> None:
    admin = clients["admin"]
    outputs = {}
    for dependency in backend_dependencies(config):
        name = dependency["api_name"]
        result = call(admin, dependency["id"], plausible_inputs(dependency, config, api_info))
        assert result["rejected"] is None, (name, result)
        assert not refused_for_permission(result), (name, result["errors"])
        assert "scrypt$" not in result["text"], f"{name} leaked a password hash"
        outputs[name] = result["text"]
    assert SENTINEL in outputs["admin_tab_load"]  # the leak check above can see a leak


def test_the_openai_routes_take_a_key_and_never_a_session_cookie(clients) -> None:
    # /v1 is outside Gradio's login: a signed-in browser's cookies open nothing there.
    for name in ("anonymous", "staff", "admin"):
        http = clients[name].client
        models = http.get("/v1/models")
        completion = http.post("/v1/chat/completions", json={
            "model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        for response in (models, completion):
            assert response.status_code == 401, (name, response.text)
            assert response.json()["error"]["code"] == "invalid_api_key"


# -- admin endpoints with real inputs: staff changes nothing ---------------------------------


def _users(app: AppProcess) -> list[tuple]:
    with Store(_db(app)) as store:
        return [(u.name, u.role, u.disabled, u.password_hash) for u in store.list_users()]


def _state(app: AppProcess) -> tuple[list[tuple], int]:
    with Store(_db(app)) as store:
        return _users(app), len(store.list_audit(action="user.add", outcome="ok", limit=1000))


@pytest.mark.parametrize(
    ("api_name", "data"),
    [
        ("admin_add_user", ["mallory", "mallory-pass-1", "admin", "", "", "", "", 1]),
        ("admin_set_role", ["staff", "admin", "", "", "", "", 1]),
        ("admin_disable_user", ["admin", "", "", "", "", 1]),
        ("admin_set_password", ["admin", "taken-over-123", "", "", "", "", 1]),
        ("admin_audit_export", ["", "", "", ""]),
    ],
)
def test_staff_with_real_inputs_is_refused_and_nothing_changes(
    app_server, clients, config, api_name, data
) -> None:
    fn_index = next(d["id"] for d in config["dependencies"] if d["api_name"] == api_name)
    before = _state(app_server)
    result = call(clients["staff"], fn_index, data)
    assert refused_for_permission(result), result
    assert "hearth-audit" not in result["text"]
    assert _state(app_server) == before


@pytest.mark.parametrize(
    ("api_name", "data"),
    [
        ("engines_add", ["evil", "ollama", "http://127.0.0.1:9", "sk-x", ""]),
        ("engines_save", ["evil", "evil", "ollama", "http://127.0.0.1:9", "", False, ""]),
        ("engines_remove", ["evil"]),
        ("engines_test", ["", "evil", "ollama", "http://127.0.0.1:9", "", ""]),
    ],
)
def test_staff_cannot_change_or_probe_engines(app_server, clients, config, api_name, data) -> None:
    fn_index = next(d["id"] for d in config["dependencies"] if d["api_name"] == api_name)
    result = call(clients["staff"], fn_index, data)
    assert refused_for_permission(result), result
    with Store(_db(app_server)) as store:
        assert store.get_setting("engines") is None
        refused = store.list_audit(actor="staff", outcome="refused", limit=50)
    assert any(e.action.startswith("engine.") for e in refused)


def test_staff_does_not_get_the_admin_tab(clients, config) -> None:
    fn_index = next(d["id"] for d in config["dependencies"] if d["api_name"] == "admin_tab_load")
    tab_update = call(clients["staff"], fn_index, [])["output"]["data"][0]
    assert tab_update["visible"] is False
    admin_update = call(clients["admin"], fn_index, [])["output"]["data"][0]
    assert admin_update["visible"] is True


# -- cross-user: staff tries alice's conversation by id ---------------------------------------


def _alice_rows(app: AppProcess, alice_id: int) -> tuple[list[tuple], list[tuple]]:
    """Alice's raw rows, read straight from the SQLite file."""
    conn = sqlite3.connect(_db(app))
    try:
        conversations = conn.execute(
            "SELECT * FROM conversations WHERE owner_id = ? ORDER BY id", (alice_id,)
        ).fetchall()
        messages = conn.execute(
            "SELECT * FROM messages WHERE owner_id = ? ORDER BY id", (alice_id,)
        ).fetchall()
    finally:
        conn.close()
    return conversations, messages


def _by_trigger(config: dict[str, Any], label: str, event: str) -> int:
    """The fn_index of the event `event` on the component labelled `label` (a button)."""
    ids = {c["id"] for c in config["components"] if c.get("props", {}).get("value") == label}
    ids |= {c["id"] for c in config["components"] if c.get("props", {}).get("label") == label}
    return next(
        d["id"]
        for d in config["dependencies"]
        if any(t[0] in ids and t[1] == event for t in d.get("targets", []))
    )


def test_staff_cannot_touch_another_users_conversation(app_server, clients, config, seeded):
    staff = clients["staff"]
    theirs = seeded["conversation"]
    before = _alice_rows(app_server, seeded["alice"])
    assert before[0] and len(before[1]) == 2
    by_name = {d["api_name"]: d["id"] for d in config["dependencies"]}
    attempts = {
        # gr.State inputs come from the caller's own session on the server, so an id sent in
        # their place is ignored; the calls below must find nothing of alice's either way.
        "open": (by_name["chat_open"], [0, [theirs]]),
        "open hit": (by_name["chat_open_hit"], [0, [[theirs, 1]]]),
        "rename": (by_name["chat_rename"], [theirs, "pwned", 1]),
        "delete": (by_name["chat_delete"], [theirs]),
        "export md": (_by_trigger(config, "Export .md", "click"), [theirs]),
        "export json": (_by_trigger(config, "Export .json", "click"), [theirs]),
        "send": (
            _by_trigger(config, "Send", "click"),
            ["more", theirs, [], "m", "", 0.7, 4096, 1],
        ),
        "search": (by_name["chat_search"], ["secret"]),
        "api chat": (by_name["chat"], ["more", "m", theirs, "", 0.7, 4096, 1]),
    }
    for what, (fn_index, data) in attempts.items():
        result = call(staff, fn_index, data)
        assert result["rejected"] is None, what
        assert SECRET not in result["text"], f"{what}: staff read alice's conversation"
        assert "pwned" not in json.dumps(result["output"]), what
    assert "0 matches" in call(staff, by_name["chat_search"], ["secret"])["text"]
    alice = GradioHTTP(app_server.url, "alice", "alice-pass-123")
    try:  # the search above would have found it: alice does
        assert "1 match for" in call(alice, by_name["chat_search"], ["secret"])["text"]
    finally:
        alice.close()
    api = call(staff, by_name["chat"], ["more", "m", theirs, "", 0.7, 4096, 1])
    assert any(f"Conversation {theirs} was not found" in e for e in api["errors"]), api
    assert _alice_rows(app_server, seeded["alice"]) == before


# -- brute force over POST /login -------------------------------------------------------------


def _login(app: AppProcess, name: str, password: str) -> tuple[int, float]:
    client = GradioHTTP(app.url)
    try:
        start = time.perf_counter()
        response = client.client.post("/login", data={"username": name, "password": password})
        return response.status_code, time.perf_counter() - start
    finally:
        client.close()


def test_repeated_failed_logins_slow_down_then_lock_out_and_are_audited(app_server, seeded):
    attempts = [
        _login(app_server, "victim", "guess-number-x") for _ in range(LOCKOUT_AFTER_FAILURES)
    ]
    assert [status for status, _ in attempts] == [400] * LOCKOUT_AFTER_FAILURES
    seconds = [elapsed for _, elapsed in attempts]
    assert seconds[-1] > seconds[0], f"no back-off: {seconds}"
    assert sum(seconds) < 60  # generous: the back-off is capped
    status, _ = _login(app_server, "victim", "victim-pass-123")
    assert status == 400, "the right password must not get through a lockout"
    with Store(_db(app_server)) as store:
        outcomes = [e.outcome for e in store.list_audit(actor="victim", action="login")][::-1]
    assert outcomes == ["failed"] * LOCKOUT_AFTER_FAILURES + ["refused"]


def test_the_server_keeps_serving_during_a_login_back_off(app_server, seeded):
    # The back-off sleeps without holding the event loop: another user signs in meanwhile.
    for _ in range(4):  # the next attempt for this name waits the longest back-off
        _login(app_server, "nobody-here", "guess")
    slow = threading.Thread(target=_login, args=(app_server, "nobody-here", "guess"))
    slow.start()
    time.sleep(0.1)
    status, _ = _login(app_server, "staff", STAFF_PASSWORD)
    still_waiting = slow.is_alive()
    slow.join()
    assert status == 200
    assert still_waiting, "the good login waited behind someone else's back-off"


def test_a_user_disabled_mid_session_is_refused_at_once(app_server, config, api_info, seeded):
    with Store(_db(app_server)) as store:
        UserAdmin(store).add_user(CLI, "carol", "carol-pass-123", "staff")
    carol = GradioHTTP(app_server.url, "carol", "carol-pass-123")
    by_name = {d["api_name"]: d["id"] for d in config["dependencies"]}
    try:
        assert not refused_for_permission(call(carol, by_name["chat_new"], []))
        with Store(_db(app_server)) as store:
            UserAdmin(store).set_disabled(CLI, "carol", True)
        # Disabling ends the session: every endpoint and the page data answer "not signed in".
        served = {}
        for dependency in backend_dependencies(config):
            result = call(carol, dependency["id"], plausible_inputs(dependency, config, api_info))
            if result["rejected"] != 401:
                served[dependency["api_name"]] = result["text"]
        assert not served, sorted(served)
        assert carol.client.get("/config").status_code == 401
        assert call(carol, by_name["chat"], ["hello", "m", None, "", 0.7, 4096, 1])["rejected"]
    finally:
        carol.close()


def test_a_promotion_ends_the_session_and_the_next_one_has_the_new_role(app_server, config, seeded):
    with Store(_db(app_server)) as store:
        UserAdmin(store).add_user(CLI, "dave", "dave-pass-1234", "staff")
    dave = GradioHTTP(app_server.url, "dave", "dave-pass-1234")
    fn_index = next(d["id"] for d in config["dependencies"] if d["api_name"] == "admin_tab_load")
    try:
        assert call(dave, fn_index, [])["output"]["data"][0]["visible"] is False
        with Store(_db(app_server)) as store:
            admin = Authentication(store).resolve("admin")
            UserAdmin(store).set_role(admin, "dave", "admin")
        assert call(dave, fn_index, [])["rejected"] == 401
    finally:
        dave.close()
    dave = GradioHTTP(app_server.url, "dave", "dave-pass-1234")
    try:
        assert call(dave, fn_index, [])["output"]["data"][0]["visible"] is True
    finally:
        dave.close()
