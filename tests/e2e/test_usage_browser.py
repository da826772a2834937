"""Limits, quotas and usage in real Chromium against the real app on the embedded engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import expect

from backend.store.database import Store, UsageEntry
from tests.support.app_process import ADMIN_PASSWORD
from tests.support.browser import signed_in_page

pytestmark = pytest.mark.e2e

STORY = "Write a long story about a lighthouse keeper and a storm."


def _ask(page, text: str) -> None:
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")


def _set_staff_quota(page, tokens: int) -> None:
    page.get_by_role("tab", name="Admin").click()
    page.get_by_text("Limits and quotas").first.click()
    # The form is locked until the panel's page-load update lands; Playwright waits for it as a
    # person would (a save sent before it was once drawn over by it: ui.common.unlocked).
    page.locator("#limits-for input").click()
    page.get_by_role("option", name="Role: staff").click()
    # Picking fills the fields from the server; until that lands Gradio covers them, and a person
    # clicks into the field once it is free. fill() alone types under the cover, and the pick's
    # late update could then empty the field (the save then cleared the quota: a CI flake).
    field = page.locator("#limits-reply_tokens_per_day textarea")
    field.click()
    field.fill(f"{tokens:,}")
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


WEEKDAY = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
WEEKDAY_MONTH_DAY = re.compile(rf"{WEEKDAY} {MONTH} [1-9][0-9]?")  # "Fri Dec 27", "Wed Jan 1"
SHOWN_DAY_LABELS = """labels => labels
    .filter(t => t.getAttribute('opacity') !== '0' && getComputedStyle(t).opacity !== '0')
    .map(t => { const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right]; })"""


def _day_labels(page, plot: str) -> list[tuple[str, float, float]]:
    """The x-axis labels a plot shows (Vega-Lite hides the overlapping ones), left to right."""
    axis = page.locator(f'{plot} g.role-axis[aria-label^="X-axis"] g.role-axis-label text')
    axis.first.wait_for()
    return sorted(axis.evaluate_all(SHOWN_DAY_LABELS), key=lambda label: label[1])


def test_the_day_axis_reads_one_date_format_across_a_month_boundary(admin_page, app_server):
    today = datetime.now(UTC).date()
    with Store(app_server.data_dir / "hearth.db") as store:
        user = store.create_user("usage-seed", "staff", "h")
        for back in range(40):  # any 40 days cross a month boundary
            day = (today - timedelta(days=back)).isoformat()
            store.record_usage(user.id, UsageEntry(day, "smollm2:135m", "page", 10, 5 + back))
    admin_page.get_by_role("tab", name="Usage").click()
    for period in ("Last 90 days", "Last 30 days"):
        admin_page.locator("#usage-days input").click()
        admin_page.get_by_role("option", name=period).click()
        days = int(period.split()[1])
        since = (today - timedelta(days=days - 1)).isoformat()
        admin_page.locator("#usage-summary", has_text=f"{since} to").wait_for()
        for plot in ("#usage-requests", "#usage-tokens"):
            labels = _day_labels(admin_page, plot)
            texts = [text for text, _, _ in labels]
            assert len(texts) >= 3, texts
            assert all(WEEKDAY_MONTH_DAY.fullmatch(text) for text in texts), texts
            assert len(set(texts)) == len(texts), f"a day labelled twice: {texts}"
            for (_, _, right), (_, left, _) in pairwise(labels):
                assert right <= left, f"labels overlap in {plot}: {texts}"


def test_each_day_sits_on_its_own_tick_in_a_browser_west_of_utc(browser, app_server):
    """Vega-Lite draws in the browser's zone; UTC midnight would put each day on the evening
    before, in Los Angeles 8 hours left of its tick."""
    today = datetime.now(UTC).date()
    with Store(app_server.data_dir / "hearth.db") as store:
        user = store.create_user("usage-west", "staff", "h")
        for back in range(7):
            day = (today - timedelta(days=back)).isoformat()
            store.record_usage(user.id, UsageEntry(day, "smollm2:135m", "page", 10, 5))
    page = signed_in_page(browser, app_server.url, "admin", ADMIN_PASSWORD,
                          timezone_id="America/Los_Angeles")  # fmt: skip
    try:
        page.get_by_role("tab", name="Usage").click()
        page.locator("#usage-summary", has_text="Everyone").wait_for()
        page.locator("#usage-days input").click()
        page.get_by_role("option", name="Last 7 days").click()
        since = today - timedelta(days=6)
        page.locator("#usage-summary", has_text=f"{since.isoformat()} to").wait_for()
        line = page.locator("#usage-requests g.mark-line path").first
        expect(line).to_have_attribute("d", re.compile(r"^M.*(L.*){6}$"))  # 7 points
        points = [float(x) for x in re.findall(r"[ML]([-\d.]+),", line.get_attribute("d"))]
        labels = page.locator(
            '#usage-requests g.role-axis[aria-label^="X-axis"] g.role-axis-label text'
        ).evaluate_all(LABEL_AT)
        for offset, x in enumerate(points):
            day = since + timedelta(days=offset)
            name = f"{day:%a %b} {day.day}"
            midnight = min(at for text, at in labels if text == name)  # the day's first tick
            assert abs(midnight - x) < 1, (name, x, labels)
    finally:
        page.context.close()


LABEL_AT = """labels => labels.map(t => [t.textContent,
    parseFloat(t.getAttribute('transform').slice('translate('.length))])"""
