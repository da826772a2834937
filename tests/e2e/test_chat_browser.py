"""The Chat tab in real Chromium against the real app on the embedded engine."""

import re
import time

import pytest

from tests.support.browser import set_max_reply_tokens

pytestmark = pytest.mark.e2e


def _last_reply(page) -> str:
    bots = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']")
    return bots.last.inner_text() if bots.count() else ""


def _ask(page, text: str) -> None:
    """Type and press Enter, as people do."""
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")


# Records every text the last reply shows, as the page changes it (no poll can miss one).
_WATCH_REPLY = """
() => {
  window.__replyStates = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('.message.bot');
    const text = bots.length ? bots[bots.length - 1].innerText : '';
    const states = window.__replyStates;
    if (text && states[states.length - 1] !== text) states.push(text);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}
"""


def test_reply_streams_in_and_shows_its_stats(admin_page):
    page = admin_page
    set_max_reply_tokens(page, 60)
    page.evaluate(_WATCH_REPLY)
    _ask(page, "Count from 1 to 100, separated by commas.")
    page.locator("#chatbot .reply-stats").last.wait_for(timeout=60_000)
    stats = page.locator("#chatbot .reply-stats").last.inner_text()
    assert "to first token" in stats and "tok/s" in stats and "reply tokens" in stats
    states = page.evaluate("window.__replyStates")
    tokens = int(re.search(r"(\d+) reply tokens", stats).group(1))
    if tokens >= 8:  # a reply of a few tokens may well arrive in one update
        growing = [s for s in states if "reply tokens" not in s]
        assert len(growing) >= 2, f"{tokens} tokens should arrive in pieces, saw {states}"
    assert page.locator("#chat-search").is_visible()


def test_stop_ends_a_long_reply_and_marks_it(admin_page):
    page = admin_page
    page.locator("#chatbot").wait_for()
    _ask(page, "Write a very long story about a dragon, a knight and a wizard.")
    page.locator("#stop").wait_for(state="visible")
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('#chatbot .message.bot');"
        " return b.length && b[b.length-1].innerText.length > 40; }"
    )
    page.locator("#stop").click()
    page.locator("#chatbot .reply-stats", has_text="Stopped").wait_for(timeout=15_000)
    stopped_at = _last_reply(page)
    time.sleep(1.5)
    assert _last_reply(page) == stopped_at, "no tokens may arrive after Stop"
    assert page.locator("#send").is_visible()


def test_model_picker_offers_the_serving_engine_models(staff_page):
    picker = staff_page.locator("#model-picker input")
    staff_page.wait_for_function("() => document.querySelector('#model-picker input').value !== ''")
    assert picker.input_value() == "smollm2:135m"


def test_shift_enter_adds_a_line_and_enter_sends(staff_page):
    page = staff_page
    box = page.locator("#message textarea")
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    assert page.locator("#chatbot .message.user").count() == 0, "Shift+Enter must not send"
    set_max_reply_tokens(page, 8)
    box.press("Enter")
    page.locator("#chatbot .message.user").first.wait_for(timeout=15_000)
    assert "second line" in page.locator("#chatbot .message.user").first.inner_text()
    page.locator("#chatbot .reply-stats").last.wait_for(timeout=60_000)
    assert box.input_value() == "", "the box is cleared after sending"


_BOXES = """() => {
  const box = s => { const r = document.querySelector(s).getBoundingClientRect();
                     return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  document.querySelector('#chatbot .bubble-wrap').scrollTop = 0;
  return {clear: box('#chatbot button[aria-label="Clear"]'), list: box('#chatbot .bubble-wrap'),
          first: box('#chatbot .message.user')};
}"""


def test_no_message_sits_under_the_chatbots_clear_button(staff_page):
    """The list scrolls below the Chatbot's own Clear button, so a long question never runs
    under it, scrolled to the top or not."""
    page = staff_page
    set_max_reply_tokens(page, 8)
    page.set_viewport_size({"width": 480, "height": 900})  # the question wraps and scrolls
    _ask(page, "Explain, with one example, " + "how attention weighs earlier words, " * 8 + "ok?")
    page.locator("#chatbot .reply-stats").last.wait_for(timeout=60_000)
    boxes = page.evaluate(_BOXES)
    clear, list_, first = boxes["clear"], boxes["list"], boxes["first"]
    assert list_["top"] >= clear["bottom"], f"the list scrolls under the Clear button: {boxes}"
    assert first["top"] >= clear["bottom"] and first["right"] > clear["left"], boxes
