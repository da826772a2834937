"""HTML and script in chat text show as characters in Chromium and never run.

The model cannot be made to reply with a payload, so replies are tested by importing a
conversation whose assistant message carries one, the way a shared export would.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.app_process import AppProcess
from tests.support.browser import set_max_reply_tokens

pytestmark = pytest.mark.e2e
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
PAYLOAD = f"Look: {IMG} and {SCRIPT} end"


def assert_nothing_ran(page: Page) -> None:
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#chatbot img[src='x']").count() == 0
    assert page.locator("#chatbot script").count() == 0


def test_a_user_message_with_html_shows_as_text(staff_page: Page) -> None:
    page = staff_page
    set_max_reply_tokens(page, 4)
    page.locator("#message textarea").fill(PAYLOAD)
    page.locator("#send").click()
    page.locator("#chatbot .reply-stats").first.wait_for(timeout=60_000)
    bubble = page.locator("#chatbot .message.user").last.inner_text()
    assert IMG in bubble
    assert SCRIPT in bubble
    assert_nothing_ran(page)


def test_a_reply_with_html_shows_as_text(staff_page: Page, tmp_path: Path) -> None:
    page = staff_page
    export = {
        "format": "hearth.conversation",
        "version": 1,
        "conversation": {"title": f"Shared {IMG}", "model": "m", "options": {}},
        "messages": [
            {"role": "user", "content": "Show me an image tag."},
            {"role": "assistant", "content": PAYLOAD},
        ],
    }
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    page.locator("input[type=file][accept*='.json']").set_input_files(str(path))
    reply = page.locator("#chatbot .message.bot").last
    reply.wait_for()
    text = reply.inner_text()
    assert IMG in text
    assert SCRIPT in text
    page.locator(".conv-title", has_text=f"Shared {IMG}").wait_for()  # the sidebar, as text
    assert_nothing_ran(page)
    assert page.locator("img[src='x']").count() == 0


def test_an_html_login_name_shows_as_text_in_the_audit_log(
    admin_page: Page, app_server: AppProcess
) -> None:
    name = '<img src=x onerror="window.__xss=3">'
    with httpx.Client(base_url=app_server.url, trust_env=False) as client:
        assert client.post("/login", data={"username": name, "password": "x"}).status_code == 400
    page = admin_page
    page.get_by_role("tab", name="Admin").click()
    page.locator("#audit-apply").click()
    page.wait_for_function(
        "(name) => document.querySelector('#audit-table')?.innerText.includes(name)", arg=name
    )
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
