"""Sessions that end, sign-in from other sites, parallel guessing, audited refusals: over real
HTTP against the real app (`python app.py`), the way a browser and gradio_client reach it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from gradio_client import Client

from backend.auth import (
    CLI,
    LOCKOUT_AFTER_FAILURES,
    LOGIN_DELAY_BASE_S,
    LOGIN_DELAY_MAX_S,
    UserAdmin,
)
from backend.auth.login_throttle import login_delay_s
from backend.engines.embedded import BUNDLED_MODEL_NAME
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.gradio_http import GradioHTTP

VIEW_STATE = ["", "", "", "", 1]  # the Admin tab's filters (who, action, outcome, since), page


def _store(app: AppProcess) -> Store:
    return Store(app.data_dir / "hearth.db")


def _add(app: AppProcess, name: str, password: str) -> int:
    with _store(app) as store:
        return UserAdmin(store).add_user(CLI, name, password, "staff").id


def _by_name(http: GradioHTTP) -> dict[str, int]:
    return {d["api_name"]: d["id"] for d in http.config()["dependencies"] if d.get("api_name")}


@pytest.fixture(scope="module")
def admin(app_server: AppProcess) -> Iterator[GradioHTTP]:
    client = GradioHTTP(app_server.url, "admin", ADMIN_PASSWORD)
    yield client
    client.close()


@pytest.fixture(scope="module")
def fn(admin: GradioHTTP) -> dict[str, int]:
    return _by_name(admin)


def _served(http: GradioHTTP, fn: dict[str, int]) -> tuple[int, dict[str, Any]]:
    """What an old session gets: page data (GET /config) and a private event (chat_new)."""
    page = http.client.get("/config").status_code
    return page, http.call(fn["chat_new"], [])


def _ok(result: dict[str, Any]) -> bool:
    return result.get("msg") == "process_completed" and result.get("success") is True


def _admin_does(admin: GradioHTTP, fn: dict[str, int], what: str, name: str) -> None:
    calls = {
        "password": ("admin_set_password", [name, "a-new-password-1", *VIEW_STATE]),
        "role": ("admin_set_role", [name, "admin", *VIEW_STATE]),
        "disable": ("admin_disable_user", [name, *VIEW_STATE]),
    }
    api_name, data = calls[what]
    assert _ok(admin.call(fn[api_name], data)), what


# -- sessions end when they should ------------------------------------------------------------


@pytest.mark.parametrize("what", ["password", "role", "disable"])
def test_an_admin_change_ends_the_users_old_session(app_server, admin, fn, what) -> None:
    name = f"s-{what}"
    _add(app_server, name, "old-password-1")
    old = GradioHTTP(app_server.url, name, "old-password-1")
    try:
        page, event = _served(old, fn)
        assert page == 200 and _ok(event), event
        _admin_does(admin, fn, what, name)
        page, event = _served(old, fn)
        assert page == 401
        assert event == {"msg": "rejected", "status_code": 401, "body": event.get("body")}
    finally:
        old.close()
    with _store(app_server) as store:
        entry = next(e for e in store.list_audit(actor="admin") if e.target == name)
    assert "sessions ended" in entry.detail


def test_a_new_session_after_the_change_works(app_server, admin, fn) -> None:
    _add(app_server, "renewed", "old-password-1")
    GradioHTTP(app_server.url, "renewed", "old-password-1").close()
    _admin_does(admin, fn, "password", "renewed")
    fresh = GradioHTTP(app_server.url, "renewed", "a-new-password-1")
    try:
        page, event = _served(fresh, fn)
        assert page == 200 and _ok(event)
    finally:
        fresh.close()


def test_a_password_set_from_the_cli_ends_sessions_too(app_server, fn) -> None:
    _add(app_server, "cli-reset", "old-password-1")
    old = GradioHTTP(app_server.url, "cli-reset", "old-password-1")
    try:
        with _store(app_server) as store:  # another process, like `app.py users passwd`
            UserAdmin(store).set_password(CLI, "cli-reset", "a-new-password-1")
        assert _served(old, fn)[0] == 401
    finally:
        old.close()


def test_signing_out_bob_ends_the_BOB_session(app_server, fn) -> None:
    _add(app_server, "bob", "bob-pass-1234")
    lower = GradioHTTP(app_server.url, "bob", "bob-pass-1234")
    upper = GradioHTTP(app_server.url, "BOB", "bob-pass-1234")
    try:
        assert _served(upper, fn)[0] == 200
        out = lower.client.get("/logout", follow_redirects=False)
        assert out.status_code == 302
        assert lower.client.get("/config").status_code == 401
        page, event = _served(upper, fn)
        assert page == 401 and event["msg"] == "rejected"
    finally:
        lower.close()
        upper.close()
    with _store(app_server) as store:
        [entry] = store.list_audit(action="logout")
    assert (entry.actor, entry.outcome) == ("bob", "ok")


def test_BOB_signs_in_with_bobs_password_as_the_same_user(app_server) -> None:
    bob_id = _add(app_server, "carl", "carl-pass-1234")
    client = Client(app_server.url, auth=("CARL", "carl-pass-1234"), verbose=False)
    try:
        reply = client.predict("Hi", BUNDLED_MODEL_NAME, None, "", 0.0, 512, 4, api_name="/chat")
    finally:
        client.close()
    assert isinstance(reply, str)
    with _store(app_server) as store:
        owners = [c.owner_id for u in store.list_users() for c in store.list_conversations(u.id)]
        login = store.list_audit(action="login", outcome="ok", limit=1)[0]
    assert owners == [bob_id]
    assert login.actor == "carl"


def test_adding_BOB_while_bob_exists_is_refused(app_server, admin, fn) -> None:
    _add(app_server, "dora", "dora-pass-1234")
    result = admin.call(fn["admin_add_user"], ["DORA", "other-pass-123", "staff", *VIEW_STATE])
    assert "already exists" in json.dumps(result)
    with _store(app_server) as store:
        assert [u.name for u in store.list_users() if u.name.lower() == "dora"] == ["dora"]


# -- sign-in from other sites -----------------------------------------------------------------


def _post_login(app: AppProcess, name: str, password: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=app.url, trust_env=False, timeout=60) as client:
        return client.post("/login", data={"username": name, "password": password},
                           headers=headers)  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Referer": "http://evil.example/phish.html"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1.evil.example"},
    ],
)
def test_a_sign_in_posted_from_another_site_is_refused(app_server, headers) -> None:
    response = _post_login(app_server, "staff", STAFF_PASSWORD, **headers)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    with _store(app_server) as store:
        entry = store.list_audit(actor="staff", action="login", limit=1)[0]
    assert entry.outcome == "refused"
    assert entry.detail == f"sign-in sent from another site: {next(iter(headers.values()))}"


@pytest.mark.parametrize("same", [True, False])
def test_same_origin_and_header_less_sign_ins_work(app_server, same) -> None:
    headers = {"Origin": app_server.url, "Referer": f"{app_server.url}/"} if same else {}
    response = _post_login(app_server, "staff", STAFF_PASSWORD, **headers)
    assert response.status_code == 200
    assert "access-token" in response.headers.get("set-cookie", "")


def test_the_host_header_names_the_servers_own_origin(app_server) -> None:
    headers = {"Host": "hearth.example:8443", "Origin": "https://hearth.example:8443"}
    assert _post_login(app_server, "staff", STAFF_PASSWORD, **headers).status_code == 200


# -- parallel guessing ------------------------------------------------------------------------


def test_parallel_wrong_guesses_take_turns_and_lock_out(app_server) -> None:
    _add(app_server, "target", "target-pass-1")
    guesses = LOCKOUT_AFTER_FAILURES
    start = time.perf_counter()
    with ThreadPoolExecutor(guesses) as pool:
        responses = list(pool.map(lambda i: _post_login(app_server, "target", f"guess-{i}"),
                                  range(guesses)))  # fmt: skip
    statuses = [response.status_code for response in responses]
    elapsed = time.perf_counter() - start
    waits = [login_delay_s(n, LOGIN_DELAY_BASE_S, LOGIN_DELAY_MAX_S) for n in range(guesses)]
    assert statuses == [400] * guesses
    assert elapsed >= sum(waits)  # 0 + 0.25 + 0.5 + 1 + 2 s: the sleeps the server performs
    assert _post_login(app_server, "target", "target-pass-1").status_code == 400
    with _store(app_server) as store:
        outcomes = [e.outcome for e in store.list_audit(actor="target", action="login")][::-1]
    assert outcomes == ["failed"] * guesses + ["refused"]


# -- refusals are audited, and the Admin filter finds them -------------------------------------

STAFF_TRIES = {
    "admin_add_user": (["mallory", "mallory-pass-1", "admin", *VIEW_STATE], "user.add", "mallory"),
    "admin_set_role": (["staff", "admin", *VIEW_STATE], "user.role", "staff"),  # promote self
    "admin_disable_user": (["admin", *VIEW_STATE], "user.disable", "admin"),
    "admin_enable_user": (["admin", *VIEW_STATE], "user.enable", "admin"),
    "admin_set_password": (["admin", "taken-over-123", *VIEW_STATE], "user.passwd", "admin"),
    "admin_audit_filter": (VIEW_STATE, "audit.read", ""),
    "admin_audit_export": (VIEW_STATE[:4], "audit.export", ""),
}


def test_every_admin_action_staff_tries_leaves_a_refused_row(app_server, admin, fn) -> None:
    staff = GradioHTTP(app_server.url, "staff", STAFF_PASSWORD)
    try:
        for api_name, (data, _, _) in STAFF_TRIES.items():
            result = staff.call(fn[api_name], data)
            assert "Only an admin may" in json.dumps(result), api_name
    finally:
        staff.close()
    shown = admin.call(fn["admin_audit_filter"], ["staff", "", "refused", "", 1])
    rows = shown["output"]["data"][2]["data"]  # the audit table: when, who, action, target...
    found = {(row[1], row[2], row[3], row[4]) for row in rows}
    assert {(who, outcome) for who, _, _, outcome in found} == {("staff", "refused")}
    expected = {("staff", action, target, "refused") for _, action, target in STAFF_TRIES.values()}
    assert expected <= found, expected - found
    with _store(app_server) as store:
        assert store.get_user_by_name("mallory") is None
        assert store.get_user_by_name("staff").role == "staff"
