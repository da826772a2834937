"""The admission panel over real HTTP: mounted in a Blocks over real Services, signed-in users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest

from backend.admission.settings import AdmissionSettings
from backend.auth import CLI
from backend.services import Services
from backend.settings import Settings
from tests.support.app_process import free_port
from tests.support.gradio_http import GradioHTTP
from ui.admin import admission_panel

ADMIN_PW, STAFF_PW = "admin-pass-123", "staff-pass-123"


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, str]]:
    data_dir: Path = tmp_path_factory.mktemp("panel")
    services = Services.build(Settings(data_dir=data_dir, engine="embedded"))
    services.users.add_user(CLI, "boss", ADMIN_PW, "admin")
    services.users.add_user(CLI, "clerk", STAFF_PW, "staff")
    with gr.Blocks() as demo:
        admission_panel.build(services, demo)
    demo.queue()
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        auth=services.auth.authenticate,
        prevent_thread_lock=True,
        ssr_mode=False,
        show_error=False,
    )
    yield services, f"http://127.0.0.1:{port}"
    demo.close()
    services.close()


def _call(url: str, user: str, password: str, api_name: str, data: list) -> dict:
    client = GradioHTTP(url, user, password)
    try:
        return client.call(client.fn_index(api_name), data)
    finally:
        client.close()


def test_staff_sees_the_settings_read_only_and_cannot_save(panel) -> None:
    services, url = panel
    shown = _call(url, "clerk", STAFF_PW, "admission_panel_load", [])["output"]["data"]
    assert shown[0]["value"] == "balanced" and shown[0]["interactive"] is False
    assert shown[7]["value"] == "spread" and shown[7]["interactive"] is False
    assert shown[8]["visible"] is False  # the Save button
    assert "Only an admin can change them" in shown[10]
    assert "OLLAMA_NUM_PARALLEL=1" in shown[10]
    refused = _call(
        url, "clerk", STAFF_PW, "admission_save", ["off", 0, "MiB", "f16", 1, 4096, False, "spread"]
    )
    assert "Only an admin may change the admission policy" in refused["output"]["error"]
    assert services.models.admission_settings() == AdmissionSettings()
    refusals = services.store.list_audit(action="admission.settings", actor="clerk")
    assert [e.outcome for e in refusals] == ["refused"]


def test_admin_saves_and_the_change_is_audited(panel) -> None:
    services, url = panel
    shown = _call(url, "boss", ADMIN_PW, "admission_panel_load", [])["output"]["data"]
    assert shown[0]["interactive"] is True and shown[8]["visible"] is True
    assert (shown[4]["value"], shown[5]["value"], shown[6]["value"]) == (1, 4096, False)
    saved = _call(
        url, "boss", ADMIN_PW, "admission_save", ["strict", 10, "%", "q8_0", 4, 8192, True, "pack"]
    )
    assert "Saved. Policy **strict**, safety margin **10 %**" in saved["output"]["data"][1]
    assert "**4** slot(s)" in saved["output"]["data"][1]
    assert "placement **pack**" in saved["output"]["data"][1]
    expected = AdmissionSettings("strict", 10, "%", "q8_0", 4, 8192, True, "pack")
    assert services.models.admission_settings() == expected
    [entry] = services.store.list_audit(action="admission.settings", actor="boss")
    assert "balanced -> strict" in entry.detail and "OLLAMA_KV_CACHE_TYPE=q8_0" in entry.detail
    assert "placement spread -> pack" in entry.detail
    assert "OLLAMA_NUM_PARALLEL=1" in entry.detail and "OLLAMA_NUM_PARALLEL=4" in entry.detail
    # every estimate now sizes KV cache and compute graph on 4 slots x num_ctx, flash attention on
    decision = services.models.check(services.auth.resolve("boss"), "llama3.1:8b", 2048)
    assert decision.estimate.parallel == 4 and decision.estimate.kv_cells == 8192
    assert decision.estimate.flash_attention


def test_a_bad_margin_is_refused_with_its_value(panel) -> None:
    services, url = panel
    before = services.models.admission_settings()
    refused = _call(
        url,
        "boss",
        ADMIN_PW,
        "admission_save",
        ["balanced", 90, "%", "f16", 1, 4096, False, "spread"],
    )
    assert "90" in refused["output"]["error"] and "Margin" in refused["output"]["error"]
    assert services.models.admission_settings() == before


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (["balanced", 512, "MiB", "q8_0", 1, 4096, False, "spread"], "needs flash attention"),
        (["balanced", 512, "MiB", "f16", 100, 4096, False, "spread"], "OLLAMA_NUM_PARALLEL"),
        (["balanced", 512, "MiB", "f16", 1, 10**9, False, "spread"], "OLLAMA_CONTEXT_LENGTH"),
        (["balanced", 512, "MiB", "f16", 1, 4096, "yes", "spread"], "OLLAMA_FLASH_ATTENTION"),
        (["balanced", 512, "MiB", "f16", 1, 4096, False, "scatter"], "scatter"),
    ],
)
def test_engine_settings_that_cannot_be_are_refused_by_name(panel, values, named) -> None:
    services, url = panel
    before = services.models.admission_settings()
    refused = _call(url, "boss", ADMIN_PW, "admission_save", values)
    assert named in refused["output"]["error"]
    assert services.models.admission_settings() == before
