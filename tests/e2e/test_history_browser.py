"""Conversation history in Chromium: it survives a restart, and the sidebar finds and resumes it."""

import pytest

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.browser import set_max_reply_tokens, signed_in_page

pytestmark = pytest.mark.e2e
QUESTION = "What is the capital of France? Answer in one sentence."


def _ask_and_wait(page, text: str, max_tokens: int = 24) -> None:
    set_max_reply_tokens(page, max_tokens)
    page.get_by_text("Generation settings").click()
    stats_before = page.locator("#chatbot .reply-stats").count()
    page.locator("#message textarea").fill(text)
    page.locator("#send").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('#chatbot .reply-stats').length > {stats_before}",
        timeout=60_000,
    )


def test_conversation_survives_an_app_restart(browser, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
    with AppProcess(data_dir) as app:
        page = signed_in_page(browser, app.url, "admin", ADMIN_PASSWORD)
        _ask_and_wait(page, QUESTION)
        reply = page.locator("#chatbot .message.bot").last.inner_text()
        page.context.close()
    with AppProcess(data_dir) as app:  # a new process on the same database
        page = signed_in_page(browser, app.url, "admin", ADMIN_PASSWORD)
        card = page.locator(".conv-title", has_text="What is the capital of France?")
        card.wait_for()
        card.click()
        page.locator("#chatbot .message.user", has_text=QUESTION).wait_for()
        assert page.locator("#chatbot .message.bot").last.inner_text() == reply
        page.context.close()


def test_search_opens_the_matching_conversation(admin_page):
    page = admin_page
    _ask_and_wait(page, "Tell me about volcanoes in Iceland.")
    page.locator("#new-chat").click()
    page.locator("#chatbot .message").first.wait_for(state="detached")
    page.locator("#chat-search textarea, #chat-search input").first.fill("volcanoes")
    page.locator("#chat-search textarea, #chat-search input").first.press("Enter")
    hit = page.locator(".conv-snippet mark", has_text="volcanoes")
    hit.first.wait_for()
    hit.first.click()
    page.locator("#chatbot .message.user", has_text="volcanoes in Iceland").wait_for()


def test_rename_and_delete_from_the_sidebar(admin_page):
    page = admin_page
    _ask_and_wait(page, "Name three rivers.")
    page.locator("#this-chat").click()
    page.locator("#chat-title textarea, #chat-title input").first.fill("Rivers of the world")
    page.get_by_role("button", name="Rename").click()
    page.locator(".conv-title", has_text="Rivers of the world").wait_for()
    page.get_by_role("button", name="Delete chat").click()
    page.get_by_role("button", name="Yes, delete it").click()
    page.locator(".conv-title", has_text="Rivers of the world").wait_for(state="detached")
    assert page.locator("#chatbot .message").count() == 0


def test_the_chat_opened_from_the_sidebar_is_the_card_marked(admin_page):
    page = admin_page
    _ask_and_wait(page, "Name a mountain in Chile.")
    page.locator("#new-chat").click()
    page.locator("#chatbot .message").first.wait_for(state="detached")
    _ask_and_wait(page, "Name a lake in Peru.")
    selected = page.locator(".conv-card.selected .conv-title")
    selected.filter(has_text="Name a lake in Peru.").wait_for()  # the new chat, as it ends
    page.locator(".conv-title", has_text="Name a mountain in Chile.").click()
    page.locator("#chatbot .message.user", has_text="mountain in Chile").wait_for()
    selected.filter(has_text="Name a mountain in Chile.").wait_for()
    assert selected.count() == 1
