"""Chromium through Playwright, launched the way this machine needs, and a signed-in page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    configured = os.environ.get("HEARTH_CHROMIUM")
    if configured:
        return configured
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def signed_in_page(
    browser: Browser, url: str, username: str, password: str, **context_options: Any
) -> Page:
    """A fresh browser context (own cookies and connections) signed in as one user; the
    options are Playwright's for the context (timezone_id, locale, ...)."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 900}, **context_options})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(url)
    page.get_by_label("username").fill(username)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#chatbot")
    # The page's load event fills the model picker and the chat list in one update; a click
    # before it lands would send with no model chosen. The list's page label marks it done.
    page.locator("#chat-pages", has_text="chats").wait_for()
    return page


def set_max_reply_tokens(page: Page, tokens: int) -> None:
    """Open Generation settings and set Max reply tokens, then check that the page kept it.

    In a CI run the field showed 0 again by the time Enter was pressed, and the reply ran on
    until the test's time was out; the value is typed again until it holds.
    """
    field = page.locator("#max-tokens input")
    if not field.is_visible():
        page.get_by_text("Generation settings").click()
    wanted = str(tokens)
    for _ in range(20):
        field.fill(wanted)
        field.press("Tab")  # leave the field, as a person does before typing the question
        page.wait_for_timeout(250)
        if field.input_value() == wanted:
            break
    expect(field).to_have_value(wanted)
