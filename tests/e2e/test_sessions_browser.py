"""Sign out and sign-in from another site, in Chromium against the real app."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.support.app_process import AppProcess
from tests.support.browser import signed_in_page

pytestmark = pytest.mark.e2e


def test_sign_out_in_the_header_ends_the_accounts_session_in_another_browser(
    browser: Browser, app_server: AppProcess
) -> None:
    with Store(app_server.data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "erin", "erin-pass-1234", "staff")
    lower = signed_in_page(browser, app_server.url, "erin", "erin-pass-1234")
    upper = signed_in_page(browser, app_server.url, "ERIN", "erin-pass-1234")
    try:
        assert upper.locator(".hearth-header .who").inner_text() == "erin"  # one account
        lower.get_by_role("link", name="Sign out").click()
        lower.get_by_label("username").wait_for()
        upper.reload()
        upper.get_by_label("username").wait_for()  # the login form: that session ended too
        assert upper.locator("#chatbot").count() == 0
    finally:
        lower.context.close()
        upper.context.close()


def test_a_login_form_on_another_site_cannot_sign_the_browser_in(
    browser: Browser, app_server: AppProcess
) -> None:
    context = browser.new_context()
    context.set_default_timeout(30_000)
    form = (
        f'<form id="f" method="post" action="{app_server.url}/login">'
        '<input name="username" value="staff"><input name="password" value="staff-pass-123">'
        "</form><script>document.getElementById('f').submit()</script>"
    )
    context.route("http://evil.example/**", lambda route: route.fulfill(body=form,
                  content_type="text/html"))  # fmt: skip
    try:
        page = context.new_page()
        with page.expect_response(f"{app_server.url}/login") as posted:
            page.goto("http://evil.example/phish.html")
        assert posted.value.status == 403
        assert not [c for c in context.cookies(app_server.url) if "access-token" in c["name"]]
        page.goto(app_server.url)
        page.get_by_label("username").wait_for()  # still signed out
    finally:
        context.close()


def test_the_sign_in_page_is_hearths_and_says_when_a_password_is_wrong(
    browser: Browser, app_server: AppProcess
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(app_server.url)
        expect(page.locator(".hh-sign-in .band strong")).to_have_text("Hearth")
        expect(page.get_by_role("heading", name="Login")).to_be_hidden()  # the band instead
        page.get_by_label("username").fill("staff")
        page.get_by_label("password").fill("not-the-password")
        page.get_by_label("password").press("Enter")
        expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
        page.get_by_label("username").fill("staff")  # Gradio's form empties both fields
        page.get_by_label("password").fill("staff-pass-123")
        page.get_by_label("password").press("Enter")
        page.wait_for_selector("#chatbot")
        assert page.locator(".hh-sign-in").count() == 0  # the sign-in styles stay on that page
        expect(page.locator(".hearth-header .who")).to_have_text("staff")
    finally:
        context.close()
