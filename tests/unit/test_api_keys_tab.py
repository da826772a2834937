"""The API tab's handlers over real Services on a temp data dir: the empty state, the revoke
list, and revoking by the key picked (only your own; admins anyone's), with the audit rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.auth import CLI, AccountError
from backend.services import Services
from backend.settings import Settings
from tests.support.ui_services import StubRequest
from ui.api_keys import NO_KEYS, UNKNOWN_BASE, ApiKeyHandlers, api_base

ADMIN, SAM, ALEX = StubRequest("root"), StubRequest("sam"), StubRequest("alex")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = Services.build(Settings(data_dir=tmp_path, engine="embedded"))
    built.users.add_user(CLI, "root", "root-pass-123", "admin")
    built.users.add_user(CLI, "sam", "sam-pass-1234", "staff")
    built.users.add_user(CLI, "alex", "alex-pass-123", "staff")
    yield built
    built.close()


@pytest.fixture
def handlers(services: Services) -> ApiKeyHandlers:
    return ApiKeyHandlers(services)


def _shown(outputs: tuple[Any, ...]) -> dict[str, Any]:
    """The four updates of the keys' part of the tab (KeysShown.outputs), by what they are."""
    table, empty, row, pick = outputs
    return {"rows": table["value"], "table": table["visible"], "empty": empty["visible"],
            "row": row["visible"], "choices": pick["choices"], "picked": pick["value"]}  # fmt: skip


def _revokes(services: Services) -> list[tuple[str, str, str]]:
    return [
        (e.actor, e.outcome, e.target) for e in services.store.list_audit(action="api_key.revoke")
    ]


def test_no_keys_shows_the_empty_state_and_no_revoke_list(handlers: ApiKeyHandlers) -> None:
    shown = _shown(handlers.api_keys_open("", SAM)[:4])
    assert shown == {"rows": [], "table": False, "empty": True, "row": False, "choices": [],
                     "picked": None}  # fmt: skip
    assert "No API keys yet" in NO_KEYS and "/v1" in NO_KEYS


def test_a_new_key_fills_the_table_and_the_revoke_list_with_nothing_picked(
    handlers: ApiKeyHandlers,
) -> None:
    secret, *keys, name, note = handlers.api_key_create("laptop editor", SAM)
    shown = _shown(tuple(keys))
    assert secret["visible"] and secret["value"].startswith("hearth-") and name == ""
    assert shown["table"] and not shown["empty"] and shown["row"] and shown["picked"] is None
    ((label, key_id),) = shown["choices"]
    (row,) = shown["rows"]
    assert key_id == row[0] and label == f"laptop editor · {row[3]}"  # name · "hearth-xxxx…"
    assert secret["value"] not in label and "Copy it now" in note


def test_staff_are_offered_only_their_active_keys_admins_everyones(
    handlers: ApiKeyHandlers,
) -> None:
    handlers.api_key_create("a", SAM)
    handlers.api_key_create("b", SAM)
    handlers.api_key_create("theirs", ALEX)
    handlers.api_key_create("mine", ADMIN)
    sam_keys = _shown(handlers.api_keys_open("", SAM)[:4])["choices"]
    (key_a,) = [key_id for label, key_id in sam_keys if label.startswith("a · ")]
    handlers.api_key_revoke(key_a, SAM)
    sam_left = _shown(handlers.api_keys_open("", SAM)[:4])
    assert [label.split(" · ")[0] for label, _ in sam_left["choices"]] == ["b"]
    assert len(sam_left["rows"]) == 2, "a revoked key stays in the table"
    admin = [label for label, _ in _shown(handlers.api_keys_open("", ADMIN)[:4])["choices"]]
    assert admin[0].startswith("mine · ") and not admin[0].endswith(")")  # yours first, no owner
    assert sorted(label.split(" (")[-1] for label in admin[1:]) == ["alex)", "sam)"]


def test_revoking_the_picked_key_says_which_and_is_audited(
    services: Services, handlers: ApiKeyHandlers
) -> None:
    handlers.api_key_create("ci", SAM)
    ((_, key_id),) = _shown(handlers.api_keys_open("", SAM)[:4])["choices"]
    *keys, note = handlers.api_key_revoke(key_id, SAM)
    shown = _shown(tuple(keys))
    prefix = services.api_keys.list_own(services.auth.resolve("sam"))[0].prefix
    assert note == f"Revoked key **{prefix}…** (ci)."
    assert shown["choices"] == [] and not shown["row"] and shown["table"]
    assert _revokes(services) == [("sam", "ok", prefix)]


def test_an_admin_revokes_anyones_key_and_the_note_names_the_owner(
    services: Services, handlers: ApiKeyHandlers
) -> None:
    handlers.api_key_create("ci", SAM)
    ((_, key_id),) = _shown(handlers.api_keys_open("", ADMIN)[:4])["choices"]
    note = handlers.api_key_revoke(str(key_id), ADMIN)[-1]
    assert note.endswith("(ci) of sam.")
    assert [o for _, o, _ in _revokes(services)] == ["ok"]


def test_staff_cannot_revoke_another_persons_key_whatever_they_send(
    services: Services, handlers: ApiKeyHandlers
) -> None:
    handlers.api_key_create("theirs", ALEX)
    ((_, key_id),) = _shown(handlers.api_keys_open("", ALEX)[:4])["choices"]
    for sent in (key_id, str(key_id), f" {key_id} "):
        with pytest.raises(AccountError, match=r"There is no API key .* of yours"):
            handlers.api_key_revoke(sent, SAM)
    assert services.api_keys.list_own(services.auth.resolve("alex"))[0].active
    assert [(a, o) for a, o, _ in _revokes(services)] == [("sam", "refused")] * 3


@pytest.mark.parametrize(
    "value",
    [10**30, -1, 0, 2**63, float("inf"), float("nan"), True, [1], {"id": 1}, "\ud800", "1; --",
     "x" * 100_000],
)  # fmt: skip
def test_a_hostile_pick_is_refused_with_a_sentence_and_revokes_nothing(
    services: Services, handlers: ApiKeyHandlers, value: object
) -> None:
    handlers.api_key_create("keep", SAM)
    with pytest.raises(AccountError) as raised:
        handlers.api_key_revoke(value, SAM)
    message = str(raised.value)
    assert message.startswith("There is no API key ") and message.endswith(" of yours.")
    assert len(message) < 200
    assert services.api_keys.list_own(services.auth.resolve("sam"))[0].active
    assert [o for _, o, _ in _revokes(services)] == ["refused"]


@pytest.mark.parametrize("value", [None, ""])
def test_revoke_with_nothing_picked_asks_for_a_pick(
    services: Services, handlers: ApiKeyHandlers, value: object
) -> None:
    handlers.api_key_create("keep", SAM)
    with pytest.raises(ValueError, match=r"Pick the key to revoke first\."):
        handlers.api_key_revoke(value, SAM)
    assert services.api_keys.list_own(services.auth.resolve("sam"))[0].active
    assert _revokes(services) == []


@pytest.mark.parametrize(
    ("page", "base"),
    [
        ("http://127.0.0.1:7860/", "http://127.0.0.1:7860/v1"),
        ("https://ai.example.org/hearth/", "https://ai.example.org/hearth/v1"),
        ("https://[::1]:8443", "https://[::1]:8443/v1"),
    ],
)
def test_the_api_base_is_beside_the_page_the_browser_is_on(page: str, base: str) -> None:
    assert api_base(page) == base


@pytest.mark.parametrize(
    "sent",
    ["", None, 7, ["http://a"], "javascript:alert(1)", "file:///etc/passwd", "http://",
     "http://a.example/`**x**`", "http://a.example/ x", "http://a.example/<b>x</b>",
     "http://a.example/" + "a" * 3000],
)  # fmt: skip
def test_an_address_that_is_not_a_plain_http_one_shows_the_placeholder(sent: object) -> None:
    assert api_base(sent) == UNKNOWN_BASE
