"""The Admin tab in Chromium: add and disable a user, read the audit log; staff never see it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from backend.store.database import Store
from tests.support.app_process import AppProcess

pytestmark = pytest.mark.e2e
NEW_USER, NEW_PASSWORD = "newbie", "newbie-pass-1"


def wait_for_text(page: Page, selector: str, text: str, present: bool = True) -> None:
    """Wait until the element's visible text does (or does not) contain `text`."""
    page.wait_for_function(
        "([selector, text, present]) => {"
        " const el = document.querySelector(selector);"
        " return !!el && el.innerText.includes(text) === present; }",
        arg=[selector, text, present],
    )


def try_sign_in(browser: Browser, url: str, name: str, password: str) -> bool:
    """Fill the login form in a fresh context; True when the app opens, False when refused."""
    context = browser.new_context()
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_label("username").fill(name)
        page.get_by_label("password").fill(password)
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#chatbot, :text-matches('incorrect', 'i')")
        return page.locator("#chatbot").count() > 0
    finally:
        context.close()


def text_field(page: Page, elem_id: str):
    return page.locator(f"{elem_id} textarea, {elem_id} input").first


def open_admin_tab(page: Page) -> None:
    page.get_by_role("tab", name="Admin").click()
    wait_for_text(page, "#users-table", "staff")


def pick_user(page: Page, name: str) -> None:
    picker = page.locator("#manage-user input")
    picker.click()
    picker.fill(name)
    page.get_by_role("option", name=name, exact=True).click()


def test_admin_adds_then_disables_a_user_and_the_audit_log_shows_it(
    browser: Browser, admin_page: Page, app_server: AppProcess
) -> None:
    page = admin_page
    open_admin_tab(page)
    text_field(page, "#new-user-name").fill(NEW_USER)
    page.locator("#new-user-password input").fill(NEW_PASSWORD)
    page.locator("#add-user").click()
    wait_for_text(page, "#users-table", NEW_USER)
    page.get_by_text(f"Added staff '{NEW_USER}'.").wait_for()
    assert page.locator("#new-user-password input").input_value() == ""

    assert try_sign_in(browser, app_server.url, NEW_USER, NEW_PASSWORD)

    pick_user(page, NEW_USER)
    page.locator("#disable-user").click()
    page.get_by_text(f"'{NEW_USER}' is disabled.").wait_for()
    wait_for_text(page, "#users-table", "disabled")

    assert not try_sign_in(browser, app_server.url, NEW_USER, NEW_PASSWORD)

    text_field(page, "#audit-actor").fill(NEW_USER)
    page.locator("#audit-apply").click()
    wait_for_text(page, "#audit-table", "refused")
    audit = page.locator("#audit-table").inner_text()
    assert "disabled" in audit  # the refused login says why
    text_field(page, "#audit-actor").fill("")
    page.locator("#audit-apply").click()
    wait_for_text(page, "#audit-table", "user.disable")
    audit = page.locator("#audit-table").inner_text()
    assert "user.add" in audit
    assert audit.index("user.disable") < audit.index("user.add")  # newest first


def test_admin_cannot_disable_themself(admin_page: Page, app_server: AppProcess) -> None:
    page = admin_page
    open_admin_tab(page)
    pick_user(page, "admin")
    page.locator("#disable-user").click()
    page.get_by_text("You cannot disable your own account.").wait_for()
    with Store(app_server.data_dir / "hearth.db") as store:
        assert not store.get_user_by_name("admin").disabled


def test_audit_log_exports_as_csv(admin_page: Page) -> None:
    page = admin_page
    open_admin_tab(page)
    with page.expect_download() as download_info:
        page.locator("#audit-export").click()
        page.locator("#audit-csv a[download]").click()
    lines = download_info.value.path().read_text().splitlines()
    assert lines[0] == "when,who,action,target,outcome,detail"
    assert any(",admin,login,,ok," in line for line in lines[1:])


def test_staff_does_not_see_the_admin_tab(staff_page: Page) -> None:
    page = staff_page
    page.wait_for_function(  # the page-load events have run: the header names the user
        "() => document.querySelector('#hearth-header .who')?.innerText === 'staff'"
    )
    assert page.get_by_role("tab", name="Chat").is_visible()
    assert page.get_by_role("tab", name="Admin").count() == 0
    assert page.locator("#users-table").is_hidden()


def test_the_pickers_have_their_choices_on_first_view(
    admin_page: Page, app_server: AppProcess
) -> None:
    with Store(app_server.data_dir / "hearth.db") as store:
        store.set_limits(role="staff", values={"requests_per_minute": 600}, updated_by="test")
    try:
        page = admin_page
        page.reload()  # the panel's load reads the limit just set
        page.locator("#chat-pages", has_text="chats").wait_for()
        open_admin_tab(page)
        picker = page.locator("#manage-user input")
        assert picker.input_value() == "", "nobody is picked: changing a user is deliberate"
        picker.click()
        names = page.locator("ul[role=listbox] [role=option]").all_inner_texts()
        assert {"admin", "staff"} <= {n.strip() for n in names}
        page.get_by_role("option", name="admin", exact=True).click()
        page.locator("#manage-role input[value=admin]:checked").wait_for()  # their role shows

        page.get_by_text("Limits and quotas").first.click()
        assert page.locator("#limits-for input").input_value() == "Role: staff"
        expect(page.locator("#limits-requests_per_minute textarea")).to_have_value("600")
        expect(page.locator("#limits-reply_tokens_per_day textarea")).to_have_value("")
    finally:
        with Store(app_server.data_dir / "hearth.db") as store:
            store.set_limits(role="staff", values={}, updated_by="test")


def test_a_user_added_is_offered_in_limits_without_a_reload(admin_page: Page) -> None:
    page = admin_page
    open_admin_tab(page)
    text_field(page, "#new-user-name").fill("latecomer")
    page.locator("#new-user-password input").fill("latecomer-pass-1")
    page.locator("#add-user").click()
    wait_for_text(page, "#users-table", "latecomer")
    page.get_by_text("Limits and quotas").first.click()
    page.locator("#limits-for input").click()  # opening "For" reads the users again
    page.get_by_role("option", name="latecomer", exact=True).click()
    assert page.locator("#limits-for input").input_value() == "latecomer"
