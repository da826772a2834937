"""The Hardware page in Chromium against the real app: its cards fit their width."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.browser import signed_in_page

pytestmark = pytest.mark.e2e

LONG_WORD = "a_data_directory_whose_name_is_one_word_with_nowhere_to_break_a_line"
OVERFLOWING = """cards => cards
    .filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => c.querySelector('h3').textContent + ': ' + c.scrollWidth + ' > ' + c.clientWidth)"""


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The real app, its data (and so its models) under a directory with a long name."""
    data_dir = tmp_path_factory.mktemp("app-data") / LONG_WORD
    data_dir.mkdir()
    with Store(data_dir / "hearth.db") as opened:
        UserAdmin(opened).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
    with AppProcess(data_dir) as app:
        yield app


@pytest.mark.parametrize("width", [1400, 700])
def test_no_hardware_card_scrolls_sideways_even_with_a_long_data_path(
    browser: Browser, app_server: AppProcess, width: int
) -> None:
    page = signed_in_page(browser, app_server.url, "admin", ADMIN_PASSWORD,
                          viewport={"width": width, "height": 900})  # fmt: skip
    try:
        page.get_by_role("tab", name="Hardware").click()
        disk = page.locator(".hh-card", has_text="Mounted at").first
        disk.wait_for()
        assert LONG_WORD in disk.inner_text()
        assert page.locator(".hh-card").evaluate_all(OVERFLOWING) == []
    finally:
        page.context.close()
