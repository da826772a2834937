"""Several engines in real Chromium: the real app over two (then three) Ollama protocol test
servers on loopback. A model only the second host has answers in the Chat tab; a killed host
shows down on the Hardware page; Admin → Engines adds and removes a host without a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess, free_port
from tests.support.browser import signed_in_page
from tests.support.ollama_pool import KillableOllamaServer, scripted_ollama_servers

pytestmark = pytest.mark.e2e

EXTRA = ("alpha:1b", "beta:1b", "gamma:1b")  # one model that only server i has
CARDS = "#hearth-hardware-cards"
WITHIN_MS = 15_000  # the 5 s to mark an engine down, plus the page's refresh


@pytest.fixture(scope="module")
def servers() -> Iterator[list[KillableOllamaServer]]:
    with scripted_ollama_servers(3, "w0 w1 w2 w3 w4 w5", 50, EXTRA) as started:
        yield started


@pytest.fixture(scope="module")
def pool_app(
    tmp_path_factory: pytest.TempPathFactory, servers: list[KillableOllamaServer]
) -> Iterator[AppProcess]:
    """The app with engines a and b from HEARTH_ENGINES (c is left for the Engines panel)."""
    data_dir: Path = tmp_path_factory.mktemp("engines-app")
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
    pairs = zip("ab", servers[:2], strict=True)
    listed = [{"name": n, "kind": "ollama", "url": s.url} for n, s in pairs]
    app = AppProcess(
        data_dir,
        engine="auto",
        ollama_host=f"127.0.0.1:{free_port()}",  # nothing there: only the listed engines
        extra_env={"HEARTH_ENGINES": json.dumps(listed)},
    )
    with app:
        yield app


@pytest.fixture
def page(browser, pool_app: AppProcess) -> Iterator[Page]:
    opened = signed_in_page(browser, pool_app.url, "admin", ADMIN_PASSWORD)
    yield opened
    opened.context.close()


def pick_model(page: Page, name: str) -> None:
    picker = page.locator("#model-picker input")
    picker.click()
    page.get_by_role("option", name=name, exact=True).click()
    page.wait_for_function(
        "name => document.querySelector('#model-picker input').value === name", arg=name
    )


def offered_models(page: Page) -> list[str]:
    """The model picker's choices, as the dropdown lists them."""
    page.locator("#model-picker input").click()
    page.get_by_role("option").first.wait_for()
    names = [o.inner_text().strip() for o in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    return names


def card_state(page: Page, engine: str, state: str) -> None:
    """Wait until the Hardware page's card of `engine` says `state` (up or down)."""
    page.wait_for_function(
        "([cards, title, state]) => { const el = document.querySelector(cards);"
        " return !!el && el.innerText.split('\\n').some("
        "  line => line.includes(title) && line.includes('(' + state + ')')); }",
        arg=[CARDS, f"Engine {engine} · ollama", state],
        timeout=WITHIN_MS,
    )


def test_a_model_on_the_second_host_answers_and_a_killed_host_shows_down(
    page: Page, servers: list[KillableOllamaServer]
) -> None:
    before = [len(s.scripted.requests) for s in servers]
    pick_model(page, "beta:1b")
    box = page.locator("#message textarea")
    box.fill("Count for me.")
    box.press("Enter")
    page.locator("#chatbot .reply-stats").last.wait_for(timeout=60_000)
    assert page.locator("#chatbot .message.user").count() == 1
    assert page.locator("#chatbot .message.bot").last.inner_text().strip()
    after = [len(s.scripted.requests) for s in servers]
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert served == [0, 1, 0], "served by the only host that has beta:1b"

    page.get_by_role("tab", name="Hardware").click()
    card_state(page, "a", "up")
    servers[0].kill()
    card_state(page, "a", "down")
    card_state(page, "b", "up")


def test_the_engines_panel_adds_and_removes_a_host_without_a_restart(
    page: Page, pool_app: AppProcess, servers: list[KillableOllamaServer]
) -> None:
    assert "gamma:1b" not in offered_models(page)
    page.get_by_role("tab", name="Admin").click()
    page.locator("#engines-slot").get_by_text("Engines", exact=True).first.click()
    page.locator("#engines-table", has_text="b").wait_for()
    page.locator("#engine-name input, #engine-name textarea").first.fill("c")
    page.locator("#engine-url input, #engine-url textarea").first.fill(servers[2].url)
    page.locator("#engine-test").click()
    page.locator("#engines-status", has_text="Answered").wait_for()
    page.locator("#engine-add").click()
    page.locator("#engines-table", has_text=servers[2].url).wait_for()
    page.get_by_role("tab", name="Hardware").click()
    card_state(page, "c", "up")

    page.reload()
    page.locator("#chat-pages", has_text="chats").wait_for()
    assert "gamma:1b" in offered_models(page), "the new host's model, without a restart"

    page.get_by_role("tab", name="Admin").click()
    page.locator("#engines-slot").get_by_text("Engines", exact=True).first.click()
    page.locator("#engines-table", has_text=servers[2].url).wait_for()
    picker = page.locator("#engines-pick input")
    picker.click()
    page.get_by_role("option", name="c", exact=True).click()
    page.locator("#engine-remove").click()
    page.wait_for_function(
        "url => !document.querySelector('#engines-table').innerText.includes(url)",
        arg=servers[2].url,
    )
    page.reload()
    page.locator("#chat-pages", has_text="chats").wait_for()
    assert "gamma:1b" not in offered_models(page)
    page.get_by_role("tab", name="Hardware").click()
    card_state(page, "b", "up")
    assert "Engine c" not in page.locator(CARDS).inner_text()
    with Store(pool_app.data_dir / "hearth.db") as store:
        actions = [e.action for e in store.list_audit(actor="admin", outcome="ok", limit=50)]
    assert actions.index("engine.remove") < actions.index("engine.add")
