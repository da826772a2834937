"""The Models tab in real Chromium: the real app on Ollama (the protocol test server, over HTTP)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.admission import Machine
from backend.auth import CLI, UserAdmin
from backend.estimate.catalog import load_catalog, spec_for
from backend.estimate.memory import estimate_memory
from backend.hardware.monitor import HardwareMonitor
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.browser import signed_in_page
from tests.support.gradio_http import GradioHTTP
from tests.support.ollama_server import BUNDLED_NAME, OllamaTestServer

pytestmark = pytest.mark.e2e

PULLED = "smollm2:360m"
HUGE = "llama3.1:70b-instruct-fp16"
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.json")


def _facts_of(tag: str) -> dict[str, object]:
    """FakeModel fields that make the test server describe `tag` as the catalog does."""
    spec = spec_for(CATALOG.find(tag), CATALOG.quant_for_tag(tag).quant)
    arch = spec.architecture
    info = {
        "general.architecture": arch,
        "general.parameter_count": spec.parameter_count,
        f"{arch}.block_count": spec.block_count,
        f"{arch}.embedding_length": spec.embedding_length,
        f"{arch}.attention.head_count": spec.head_count,
        f"{arch}.attention.head_count_kv": spec.head_count_kv,
        f"{arch}.context_length": spec.context_length,
        f"{arch}.feed_forward_length": spec.feed_forward_length,
        f"{arch}.vocab_size": spec.vocab_size,
    }
    size = spec.file_size_bytes or 0
    return {
        "model_info": info,
        "size_bytes": size,
        "family": arch,
        "quantization": spec.quantization,
        "parameter_size": "70.6B",
    }


@pytest.fixture(scope="module")
def server(ollama_test_server: OllamaTestServer) -> Iterator[OllamaTestServer]:
    """The session's fake Ollama with a 70B F16 "installed", pulling slowly enough to watch."""
    ollama_test_server.reset()
    # /api/show answers with a 70B's facts (not the bundled file's tensors): Hearth estimates
    # an installed model from what the engine says it is.
    ollama_test_server.add_model(HUGE, **_facts_of(HUGE))
    delay = ollama_test_server.pull_step_delay_s
    ollama_test_server.pull_step_delay_s = 0.12  # 5 layers x 8 steps: about 5 s
    yield ollama_test_server
    ollama_test_server.pull_step_delay_s = delay
    ollama_test_server.reset()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, server: OllamaTestServer) -> Iterator[AppProcess]:
    data_dir = tmp_path_factory.mktemp("models-app")
    with Store(data_dir / "hearth.db") as opened:
        UserAdmin(opened).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
        UserAdmin(opened).add_user(CLI, "staff", STAFF_PASSWORD, "staff")
    with AppProcess(data_dir, engine="ollama", ollama_host=server.url) as running:
        yield running


def models_tab(browser, app: AppProcess, user: str, password: str):
    page = signed_in_page(browser, app.url, user, password)
    page.get_by_role("tab", name="Models").click()
    page.locator("#models-catalog tbody tr").first.wait_for()
    return page


def pick(page, selector: str, value: str) -> None:
    box = page.locator(f"{selector} input")
    box.fill(value)
    box.press("Enter")


def load_pick(page) -> str:
    return page.locator("#load-model input").input_value()


def wait_for_load_pick(page, name: str) -> None:
    page.wait_for_function(
        "n => document.querySelector('#load-model input')?.value === n", arg=name
    )


def test_admin_pulls_loads_and_unloads_a_model(browser, app, server) -> None:
    page = models_tab(browser, app, "admin", ADMIN_PASSWORD)
    first = sorted(server.installed_names())
    page.wait_for_function("() => !!document.querySelector('#load-model input')?.value")
    assert load_pick(page) in first, "the Load picker shows an installed model at first view"
    page.locator("#pull-tag textarea").fill(PULLED)
    page.locator("#pull-btn").click()
    bar = page.locator("#pull-progress .mm-pull")
    seen: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bar.count():
            state = bar.get_attribute("data-state")
            pct = float(bar.get_attribute("data-pct") or 0)
            if not seen or pct != seen[-1]:
                seen.append(pct)
            if state == "done":
                break
        time.sleep(0.05)
    assert bar.get_attribute("data-state") == "done"
    assert len([p for p in seen if 0 < p < 100]) >= 3, f"the bar should move, saw {seen}"
    assert f"✓ {PULLED} pulled" in bar.inner_text()
    page.locator("#models-installed", has_text=PULLED).wait_for()
    assert PULLED in server.installed_names()
    wait_for_load_pick(page, PULLED)  # the model just pulled, ready to load

    page.locator("#load-btn").click()
    decision = page.locator("#load-decision .mm-decision")
    decision.wait_for()
    assert decision.get_attribute("data-verdict") in ("admit", "warn")
    assert re.search(r"Needs \d+(\.\d)? [MG]iB at num_ctx 4096", decision.inner_text())
    page.locator("#models-loaded", has_text=PULLED).wait_for()
    assert [e.name for e in server.state.running()] == [PULLED]
    page.locator("#models-records", has_text=PULLED).wait_for()

    page.locator("#unload-btn").click()
    page.locator("#models-loaded", has_text="No model is loaded.").wait_for()
    assert server.state.running() == []

    page.locator("#delete-btn").click()
    page.locator("#delete-keep").click()
    page.locator("#delete-confirm").wait_for(state="hidden")
    assert PULLED in server.installed_names(), "Keep keeps it"
    page.locator("#delete-btn").click()
    page.locator("#delete-confirm").click()
    page.wait_for_function(
        "t => !document.querySelector('#models-installed').innerText.includes(t)", arg=PULLED
    )
    assert PULLED not in server.installed_names()
    page.wait_for_function(
        "t => { const v = document.querySelector('#load-model input')?.value;"
        " return !!v && v !== t; }",
        arg=PULLED,
    )
    assert load_pick(page) in server.installed_names(), "a deleted model leaves the picker"
    page.context.close()


def test_cancel_stops_a_pull(browser, app, server) -> None:
    page = models_tab(browser, app, "admin", ADMIN_PASSWORD)
    before = server.events.pull_disconnects
    page.locator("#pull-tag textarea").fill("qwen2.5:0.5b")
    page.locator("#pull-btn").click()
    page.locator("#pull-progress .mm-pull[data-state=running]").wait_for()
    page.locator("#pull-cancel").click()
    page.locator("#pull-progress .mm-pull[data-state=cancelled]").wait_for()
    assert server.wait_until(lambda e: e.pull_disconnects > before, timeout_s=10)
    assert "qwen2.5:0.5b" not in server.installed_names()
    page.context.close()


def _could_hold(tag: str) -> bool:
    """Whether this machine (real NVML, real RAM) could hold the model at all."""
    entry = CATALOG.find(tag)
    option = CATALOG.quant_for_tag(tag)
    spec = spec_for(entry, option.quant)
    with HardwareMonitor(Path("."), Path(".")) as monitor:
        machine = Machine.from_snapshot(monitor.snapshot())
    total = estimate_memory(spec, num_ctx=4096).total_bytes
    return total < machine.free_vram_bytes + machine.free_ram_bytes


def test_a_load_that_would_not_fit_is_refused_with_the_numbers(browser, app, server) -> None:
    if _could_hold(HUGE):
        pytest.skip(f"this machine has the memory for {HUGE}")
    page = models_tab(browser, app, "admin", ADMIN_PASSWORD)
    pick(page, "#load-model", HUGE)
    page.locator("#load-btn").click()
    decision = page.locator("#load-decision .mm-decision")
    decision.wait_for()
    text = decision.inner_text()
    assert decision.get_attribute("data-verdict") == "refuse"
    assert re.search(r"Needs 1\d\d\.\d GiB at num_ctx 4096", text), text
    assert re.search(r"Available: .* \d+\.\d GiB of RAM", text), text
    assert re.search(r"RAM in use: \d+\.\d GiB of \d+\.\d GiB", text), text
    assert "will not fit" in text
    assert page.locator("#load-override").is_visible()
    assert server.state.running() == [], "the engine never saw the load"
    page.context.close()


def _api_error(client: GradioHTTP, api_name: str, data: list) -> str:
    messages = list(client.stream(client.fn_index(api_name), data))
    last = messages[-1]
    assert last.get("msg") == "process_completed" and not last.get("success"), last
    return str((last.get("output") or {}).get("error") or "")


def test_staff_sees_no_admin_controls_and_the_api_refuses_them(browser, app, server) -> None:
    page = models_tab(browser, app, "staff", STAFF_PASSWORD)
    assert page.locator("#models-catalog .mm-badge").count() > 0, "staff sees the fit badges"
    page.locator("#models-installed", has_text=BUNDLED_NAME).wait_for()
    for control in ("#pull-btn", "#load-btn", "#delete-btn", "#unload-btn", "#load-override"):
        assert page.locator(control).count() == 0 or not page.locator(control).is_visible()
    page.context.close()

    staff = GradioHTTP(app.url, "staff", STAFF_PASSWORD)
    try:
        calls = {
            "models_pull": [PULLED],
            "models_load": [BUNDLED_NAME, 2048],
            "models_load_override": [HUGE, 2048],
            "models_delete": [BUNDLED_NAME],
            "models_unload": [BUNDLED_NAME],
        }
        for api_name, data in calls.items():
            assert "Only an admin may" in _api_error(staff, api_name, data), api_name
    finally:
        staff.close()
    assert BUNDLED_NAME in server.installed_names()
    assert server.state.running() == []


def test_opening_the_tab_shows_what_is_loaded_now_not_at_page_load(browser, app, server) -> None:
    """A chat, another admin or Ollama's own keep-alive timer changes what is loaded while the
    page is open: the tab shows it as it is when opened."""
    page = models_tab(browser, app, "admin", ADMIN_PASSWORD)
    page.locator("#models-loaded", has_text="No model is loaded.").wait_for()
    page.get_by_role("tab", name="Chat").click()
    body = {"model": BUNDLED_NAME, "keep_alive": -1}  # loaded outside this page
    try:
        assert httpx.post(f"{server.url}/api/generate", json=body).json()["done_reason"] == "load"
        page.get_by_role("tab", name="Models").click()
        page.locator("#models-loaded", has_text=BUNDLED_NAME).wait_for()
    finally:
        httpx.post(f"{server.url}/api/generate", json=body | {"keep_alive": 0})
    assert server.state.running() == []
    page.context.close()
