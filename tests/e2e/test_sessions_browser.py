"""Sign out and sign-in from another site, in Chromium against the real app."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

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
