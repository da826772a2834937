"""The API tab in Chromium: the empty state, making a key, and revoking it by picking it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from backend.store.database import Store
from tests.support.app_process import AppProcess

pytestmark = pytest.mark.e2e


def make_key(page: Page, name: str) -> None:
    page.get_by_label("New key's name").fill(name)
    page.get_by_role("button", name="Make key").click()
    page.locator("#api-keys-status", has_text=f"({name}). Copy it now.").wait_for()


def test_staff_make_a_key_then_revoke_it_from_the_list(
    staff_page: Page, app_server: AppProcess
) -> None:
    page = staff_page
    page.get_by_role("tab", name="API").click()
    empty = page.locator("#api-keys-empty", has_text="No API keys yet")
    empty.wait_for()
    expect(page.locator("#api-how-to")).to_contain_text(f"base URL {app_server.url}/v1,")
    assert not page.locator("#api-keys-table").is_visible()
    assert not page.locator("#api-key-revoke").is_visible(), "nothing to revoke yet"

    make_key(page, "laptop editor")
    make_key(page, "ci runner")
    expect(empty).to_be_hidden()
    expect(page.locator("#api-keys-table")).to_contain_text("laptop editor")
    pick = page.locator("#api-key-revoke-pick input")
    assert pick.input_value() == "", "no key is picked for you: revoking cannot be undone"
    pick.click()
    options = page.locator("ul[role=listbox] [role=option]").all_inner_texts()
    assert [o.split(" · ")[0].strip() for o in options] == ["ci runner", "laptop editor"]
    assert all(o.strip().startswith(f"{o.split(' · ')[0]} · hearth-") for o in options)
    page.get_by_role("option", name="laptop editor · ").click()
    page.locator("#api-key-revoke").click()
    page.locator("#api-keys-status", has_text="(laptop editor).").wait_for()
    expect(page.locator("#api-keys-status")).to_contain_text("Revoked key")
    expect(page.locator("#api-keys-table")).to_contain_text("revoked")
    assert pick.input_value() == ""
    pick.click()
    options = page.locator("ul[role=listbox] [role=option]").all_inner_texts()
    assert [o.split(" · ")[0].strip() for o in options] == ["ci runner"]
    page.keyboard.press("Escape")

    with Store(app_server.data_dir / "hearth.db") as store:
        rows = [(e.actor, e.action, e.outcome) for e in store.list_audit(action="api_key.revoke")]
    assert rows == [("staff", "api_key.revoke", "ok")]
