"""Limits, quotas and usage in real Chromium against the real app on the embedded engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.store.database import Store

pytestmark = pytest.mark.e2e

STORY = "Write a long story about a lighthouse keeper and a storm."


def _ask(page, text: str) -> None:
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")


def _set_staff_quota(page, tokens: int) -> None:
    page.get_by_role("tab", name="Admin").click()
    page.get_by_text("Limits and quotas").first.click()
    page.locator("#limits-for input").click()
    page.get_by_role("option", name="Role: staff").click()
    page.locator("#limits-reply_tokens_per_day textarea").fill(f"{tokens:,}")
    page.locator("#limits-save").click()
    page.locator("#limits-status", has_text="Saved for staff").wait_for()


@pytest.fixture
def quota_cleared(app_server):
    """Lift the staff quota the test sets, so other tests of this app can chat as staff."""
    yield
    with Store(app_server.data_dir / "hearth.db") as store:
        store.set_limits(role="staff", values={}, updated_by="test")


def test_a_staff_quota_set_by_an_admin_stops_the_next_turn_with_its_reset_time(
    admin_page, staff_page, quota_cleared
):
    _set_staff_quota(admin_page, 20)
    table = admin_page.locator("#limits-table")
    table.filter(has_text="role staff").wait_for()  # the rows draw just after the status line
    assert "20" in table.inner_text()

    _ask(staff_page, STORY)
    staff_page.locator("#chatbot .reply-stats").last.wait_for(timeout=60_000)
    assert "at most 20 tokens" in staff_page.locator("#chat-notice").inner_text()
    questions = staff_page.locator("#chatbot .message.user").count()
    _ask(staff_page, "And then?")
    staff_page.locator(
        "#chat-notice", has_text="You have used your 20 reply tokens for today; the quota resets"
    ).wait_for()
    assert "00:00 UTC (in " in staff_page.locator("#chat-notice").inner_text()
    assert staff_page.locator("#chatbot .message.user").count() == questions, "nothing was sent"
    assert staff_page.locator("#message textarea").input_value() == "And then?"

    staff_page.get_by_role("tab", name="Usage").click()
    summary = staff_page.locator("#usage-summary", has_text="Your limits")
    summary.wait_for()
    assert summary.inner_text().startswith("staff, ")
    assert "reply tokens per day: 20 (role staff), 20 used today" in summary.inner_text()
    assert not staff_page.locator("#usage-whose").is_visible(), "staff see only their own"


def test_admins_see_everyones_usage_with_plots_and_export_it(admin_page):
    _ask(admin_page, "Say hello.")
    admin_page.locator("#chatbot .reply-stats").last.wait_for(timeout=60_000)
    admin_page.get_by_role("tab", name="Usage").click()
    admin_page.locator("#usage-summary", has_text="Everyone").wait_for()
    assert admin_page.locator("#usage-whose").is_visible()
    for plot in ("#usage-requests", "#usage-tokens", "#usage-users", "#usage-models"):
        admin_page.locator(f"{plot} canvas, {plot} svg").first.wait_for()
    with admin_page.expect_download() as download:
        admin_page.locator("#usage-export").click()
        admin_page.locator("#usage-csv a").first.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("day,user,model,source,requests,")
    assert ",admin,smollm2:135m,page," in text
