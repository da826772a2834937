"""Chat text loads nothing and stored values never become markup, in real Chromium.

A loopback HTTP server counts every request that reaches its port; chat text points images at
it in every way markdown, HTML and the page's extensions allow. The model cannot be made to
write such a reply, so replies (and questions) come in by importing a conversation, the way a
shared export would. A control image added by the test itself proves the browser would have
reached the server, and marks the moment by which the chat's own images would have.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.browser import set_max_reply_tokens

pytestmark = pytest.mark.e2e

END = "END-OF-PAYLOADS"
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)

# Each payload points at {u}, a distinct beacon URL, so a hit names the payload that leaked.
PAYLOADS = [
    "![]({u})",
    '![alt]({u} "title")',
    "![a [nested [deep]] b]({u})",
    "![a](<{u}>)",
    "![a](  {u}  )",
    "![a](\n{u}\n)",
    "!![a]({u})",
    "![a][r]\n\n[r]: {u}",
    "![r]\n\n[r]: {u}",
    "![r][]\n\n[r]: <{u}>",
    "- item ![a]({u})\n- > quoted ![b]({u})",
    "1. one\n   > ![c]({u})",
    "[![inner]({u})]({u})",
    "&#33;[a]({u}) and !&#91;a]({u})",
    '<img src="{u}"> <picture><source srcset="{u}"></picture> <svg><image href="{u}"/></svg>',
    "<style>* { background: url({u}) }</style> <video poster='{u}'></video>",
    "{u}&x=.png and <{u}&y=.png>",
    "```\n<img src={u}>\n```",
    "```\n<img src={u}>",
    "~~~\n<img src={u}>\n~~~",
    "````\n```\n<img src={u}>\n```\n````",
    "~~~~\n~~~\n```\n~~~~\n<img src={u}>\n```",
    "inline `` ``` `` <img src={u}> and ```<img src={u}>```",
    "`a``<img src={u}>` and ``a`<img src={u}>``",
    "\\`<img src={u}>\\` and \\\\`<img src={u}>`",
    "text\n\n    ```\n<img src={u}>\n    ```",
    "- a\n  ```\n<img src={u}>\n```",
    "> ```\n> <img src={u}>\n> ```",
    "[a\n```\n]: /u\n<img src={u}>\n```",
    "[a\n\n```\n]: /u '\n<img src={u}>\n'\n```",
    "$$\n```\n$$\n<img src={u}>\n```",
    "$$`$$<img src={u}>`",
    "$$\\includegraphics{{u}}$$",
    "```mermaid\ngraph TD\n  A[\"<img src='{u}'>\"] --> B\n```",
    "http://a.example`<img src={u}>`",
    "| a | b |\n|---|---|\n| `x|<img src={u}>` | y |",
    "`![]({u})` and ``` ![]({u}) ```",
    "    indented <img src={u}>\n\n    ![]({u})",
]


# Building blocks for random texts: markdown's block and inline syntax, and images.
PIECES = ["`", "``", "```", "````", "~~~", "\n", "\n\n", " ", "   ", "    ", "\t", "[", "]",
          ":", "!", "\\", "$$", "|", "> ", "- ", "1. ", "&", "<", "x", "mermaid", "py", "'",
          '"', "(", ")", "*", "_", "#", "http://a.example", "![a]({u})", "<img src={u}>",
          "[r]: {u}", "![r]", "{u}", "<{u}>"]  # fmt: skip
RANDOM_TEXTS = 60


class _Beacon(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(GIF)))
        self.end_headers()
        self.wfile.write(GIF)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def beacon() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _base(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _import(page: Page, tmp_path: Path, model: str, messages: list[dict[str, str]]) -> None:
    export = {
        "format": "hearth.conversation",
        "version": 1,
        "conversation": {"title": "Shared chat", "model": model, "options": {}},
        "messages": messages,
    }
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    page.locator("input[type=file][accept*='.json']").set_input_files(str(path))


def _control_hit(page: Page, server: ThreadingHTTPServer) -> list[str]:
    """Load one image on purpose; once it arrives, any earlier image would have too."""
    page.evaluate(
        "(src) => { window.__control = new Image(); window.__control.src = src; }",
        f"{_base(server)}/control",
    )
    deadline = time.monotonic() + 15
    while "/control" not in server.hits and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/control" in server.hits, "the control image never reached the beacon"
    return [hit for hit in server.hits if hit != "/control"]


def _elements_pointing_at(page: Page, selector: str, port: int) -> list[str]:
    """Elements under `selector` with an attribute that would fetch from the beacon's port.

    Links (a[href]) are allowed: they load only when the user opens them.
    """
    return page.evaluate(
        """([selector, port]) => {
            const fetching = ['src', 'srcset', 'poster', 'data', 'style', 'background',
                              'href', 'xlink:href', 'action', 'formaction'];
            const found = [];
            for (const el of document.querySelectorAll(selector + ' *')) {
                for (const attr of el.attributes) {
                    const link = el.tagName === 'A' && attr.name === 'href';
                    if (fetching.includes(attr.name) && !link && attr.value.includes(':' + port)) {
                        found.push(el.outerHTML.slice(0, 200));
                    }
                }
            }
            return found;
        }""",
        [selector, str(port)],
    )


def test_images_in_questions_and_replies_load_nothing(
    staff_page: Page, tmp_path: Path, beacon: ThreadingHTTPServer
) -> None:
    page = staff_page
    base, port = _base(beacon), beacon.server_address[1]
    messages = []
    for number, payload in enumerate(PAYLOADS):
        for role in ("user", "assistant"):
            text = payload.replace("{u}", f"{base}/beacon?d=secret-{number}-{role}")
            messages.append({"role": role, "content": text})
    messages[-1]["content"] += f"\n\n{END}"
    _import(page, tmp_path, "m", messages)
    page.locator("#chatbot .message.bot", has_text=END).wait_for()

    assert _control_hit(page, beacon) == []
    assert _elements_pointing_at(page, "#chatbot", port) == []
    assert page.locator("#chatbot .message img").count() == 0
    # An image became a link the user can choose to open, and code shows its markup as text.
    first = page.locator("#chatbot .message.bot").first
    link = first.locator("a", has_text="image:")
    assert link.get_attribute("href") == f"{base}/beacon?d=secret-0-assistant"
    fenced = page.locator("#chatbot pre code", has_text="<img src=").count()
    assert fenced >= 2 * 6, f"fenced payloads should show their <img> as code text, saw {fenced}"


def test_random_mixtures_of_markdown_and_images_load_nothing(
    staff_page: Page, tmp_path: Path, beacon: ThreadingHTTPServer
) -> None:
    page = staff_page
    base, port = _base(beacon), beacon.server_address[1]
    chance = random.Random(11)
    messages = []
    for number in range(RANDOM_TEXTS):
        text = "".join(chance.choice(PIECES) for _ in range(chance.randint(5, 40)))
        role = ("user", "assistant")[number % 2]
        messages.append({"role": role, "content": text.replace("{u}", f"{base}/r{number}")})
    messages.append({"role": "assistant", "content": END})
    _import(page, tmp_path, "m", messages)
    page.locator("#chatbot .message.bot", has_text=END).wait_for()
    assert _control_hit(page, beacon) == []
    assert _elements_pointing_at(page, "#chatbot", port) == []
    assert page.locator("#chatbot .message img").count() == 0


def test_an_error_footer_with_an_image_loads_nothing(
    staff_page: Page, tmp_path: Path, beacon: ThreadingHTTPServer
) -> None:
    page = staff_page
    base, port = _base(beacon), beacon.server_address[1]
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": END,
            "status": "error",
            "error": f"engine said ![x]({base}/err) <img src={base}/err2>",
        },
    ]
    _import(page, tmp_path, "m", messages)
    page.locator("#chatbot .reply-stats", has_text="Failed").wait_for()
    assert _control_hit(page, beacon) == []
    assert _elements_pointing_at(page, "#chatbot", port) == []


def test_a_stored_model_name_that_is_html_opens_as_text(
    staff_page: Page, tmp_path: Path, beacon: ThreadingHTTPServer
) -> None:
    page = staff_page
    base, port = _base(beacon), beacon.server_address[1]
    name = f'<img src="{base}/model" onerror="window.__xss=7">'
    _import(page, tmp_path, name, [{"role": "user", "content": "hello"}])
    # Either the notice (the name as text) or Gradio's "not in the list of choices" toast.
    settled = "#chat-notice:has-text('not installed here'), :text('not in the list of choices')"
    page.locator(settled).first.wait_for()
    assert _control_hit(page, beacon) == []
    assert _elements_pointing_at(page, "body", port) == []
    assert page.evaluate("() => window.__xss") is None
    assert page.get_by_text("not in the list of choices").count() == 0

    notice = page.locator("#chat-notice", has_text="not installed here")
    assert name in notice.inner_text()
    assert page.locator("#model-picker input").input_value() == ""
    # Opening it again from the sidebar goes through the same path.
    page.locator(".conv-title", has_text="Shared chat").first.click()
    page.locator("#chatbot .message.user", has_text="hello").wait_for()
    assert name in page.locator("#chat-notice").inner_text()
    assert _elements_pointing_at(page, "body", port) == []
    # Picking an installed model replaces the notice with what admission says about it.
    page.locator("#model-picker input").click()
    page.get_by_role("option", name="smollm2:135m").click()
    page.wait_for_function(
        "() => !document.querySelector('#chat-notice').innerText.includes('not installed')"
    )
    assert page.get_by_text("not in the list of choices").count() == 0


def test_a_typed_question_with_images_and_fences_loads_nothing(
    staff_page: Page, beacon: ThreadingHTTPServer
) -> None:
    page = staff_page
    base, port = _base(beacon), beacon.server_address[1]
    question = (
        f"See ![x]({base}/typed-1) and `<img src={base}/typed-2>`\n"
        f"```\n<img src={base}/typed-3>\n```\n~~~\n<img src={base}/typed-4>"
    )
    set_max_reply_tokens(page, 4)
    page.locator("#message textarea").fill(question)
    page.locator("#send").click()
    page.locator("#chatbot .reply-stats").first.wait_for(timeout=60_000)
    assert _control_hit(page, beacon) == []
    assert _elements_pointing_at(page, "#chatbot", port) == []
    assert page.locator("#chatbot .message.user pre code", has_text="typed-3").count() == 1
