"""Admin forms whose values come from a page-load update are locked until it lands
(ui.common.unlocked): the update can then never overwrite what an admin typed or saved before it
came (a slow page load once put the Limits table read before a save over the saved one).

The real app: its /config as the page gets it, and each panel's load as an admin and as staff.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.gradio_http import GradioHTTP

LIMITS = ["limits-for", "limits-turns_in_flight", "limits-requests_per_minute",
          "limits-reply_tokens_per_day", "limits-save"]  # fmt: skip
ADMISSION = ["admission-policy", "admission-margin", "admission-unit", "admission-kv",
             "admission-parallel", "admission-context", "admission-flash",
             "admission-placement"]  # fmt: skip
ENGINES = ["engines-pick", "engine-test", "engine-add", "engine-save", "engine-remove"]
# Each form's load and the components it unlocks for an admin.
FORMS = {"limits_panel_load": LIMITS, "admission_panel_load": ADMISSION,
         "engines_panel_load": ENGINES}  # fmt: skip


def _props(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each component's props by its elem_id."""
    return {c["props"]["elem_id"]: c["props"] for c in config["components"]
            if c.get("props", {}).get("elem_id")}  # fmt: skip


def _load(client: GradioHTTP, api_name: str) -> dict[str, Any]:
    """What the page-load event sent to each of its outputs, by the output's elem_id."""
    config = client.config()
    dependency = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    elem_ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    done = client.call(dependency["id"], [])
    assert done.get("success") is not False, done
    sent = done["output"]["data"]
    return {elem_ids[o]: v for o, v in zip(dependency["outputs"], sent, strict=True)}


@pytest.fixture(scope="module")
def clients(app_server: AppProcess):
    admin = GradioHTTP(app_server.url, "admin", ADMIN_PASSWORD)
    staff = GradioHTTP(app_server.url, "staff", STAFF_PASSWORD)
    yield admin, staff
    admin.close()
    staff.close()


def test_the_forms_come_to_the_page_locked(clients) -> None:
    props = _props(clients[0].config())
    for elem_id in LIMITS + ADMISSION + ENGINES:
        assert props[elem_id]["interactive"] is False, elem_id
    assert props["admission-save"]["visible"] is False


@pytest.mark.parametrize("api_name", list(FORMS))
def test_an_admins_page_load_fills_and_unlocks_each_form(clients, api_name: str) -> None:
    sent = _load(clients[0], api_name)
    for elem_id in FORMS[api_name]:
        assert sent[elem_id].get("interactive") is True, elem_id
    if api_name == "limits_panel_load":  # filled in the same update: "For" and its values
        assert sent["limits-for"]["value"] == "role:staff"
        assert sent["limits-turns_in_flight"]["value"] == ""
    if api_name == "admission_panel_load":
        assert sent["admission-save"]["visible"] is True
        assert sent["admission-policy"]["value"] == "balanced"


@pytest.mark.parametrize("api_name", list(FORMS))
def test_staffs_page_load_leaves_each_form_locked(clients, api_name: str) -> None:
    sent = _load(clients[1], api_name)
    for elem_id in FORMS[api_name]:
        update = sent[elem_id]
        assert not isinstance(update, dict) or update.get("interactive") in (None, False), elem_id
    if api_name == "admission_panel_load":  # staff read the settings, and cannot save them
        assert sent["admission-save"]["visible"] is False
