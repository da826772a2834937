"""The chat renderer: no HTML and no images from chat text, code that stays code.

`assert_safe` checks the properties the page's safety rests on (see ui/chat_markdown.py);
the Chromium test (tests/e2e/test_chat_images_browser.py) checks the page itself.
"""

from __future__ import annotations

import html
import random
import re

import gradio as gr
import pytest

from backend.store.database import Message
from ui.chat.render import model_choice, reply_markdown
from ui.chat_markdown import LATEX_DELIMITERS, chat_markdown
from ui.common import inline_markdown, safe_markdown

URL = "http://127.0.0.1:9/beacon?d=secret"
OUR_TAGS = re.compile(
    r'<pre><code(?: class="language-[A-Za-z0-9+#-]+")?>|</code></pre>|<code>|</code>'
)
FENCE_LINE = re.compile(r"(`{3,})([A-Za-z0-9+#-]*)")


def _read(markdown: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """Text outside fences, and each fence (language, lines), read the way marked will."""
    text, fences = [], []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        opened = FENCE_LINE.fullmatch(lines[i])
        if opened is None:
            text.append(lines[i])
            i += 1
            continue
        body = []
        i += 1
        while lines[i] != opened[1]:  # every fence is closed: IndexError fails the test
            assert not lines[i].lstrip(" ").startswith(opened[1]), "would close the fence early"
            body.append(lines[i])
            i += 1
        fences.append((opened[2], body))
        i += 1
    return "\n".join(text), fences


def _outside_code(text: str) -> tuple[str, list[str]]:
    """The text with inline code spans cut out (escapes kept), and the spans' contents."""
    kept, spans, i = [], [], 0
    while i < len(text):
        if text[i] == "\\":
            kept.append(text[i : i + 2])
            i += 2
            continue
        run = re.match(r"`+", text[i:])
        if run is None:
            kept.append(text[i])
            i += 1
            continue
        closing = re.compile(rf"(?<!`){run.group()}(?!`)").search(text, i + len(run.group()))
        assert closing is not None, f"a stray backtick run at {i}: {text!r}"
        spans.append(text[i + len(run.group()) : closing.start()])
        kept.append(" ")
        i = closing.end()
    return "".join(kept), spans


def _unescaped(text: str, pattern: str) -> bool:
    """Whether `pattern` occurs with none of its characters backslash-escaped."""
    plain = re.sub(r"\\.", lambda m: "\0" * 2, text, flags=re.DOTALL)
    return pattern in plain


def assert_safe(markdown: str) -> None:
    text, fences = _read(markdown)
    for lang, _ in fences:
        assert lang.casefold() != "mermaid", "the page inserts a mermaid body unescaped"
    outside, spans = _outside_code(OUR_TAGS.sub(" ", text))
    assert "<" not in outside, "HTML outside code"
    assert not _unescaped(outside, "!["), "an image outside code"
    assert not _unescaped(outside, "~~~"), "a ~~~ fence the renderer did not write"
    assert not _unescaped(outside, "]:"), "a link reference definition"
    for content in spans:
        assert not re.search(r"[<\[\]]", content), "inline code that would be harmful as text"


PAYLOADS = [
    f"![]({URL})",
    f'![alt]({URL} "title")',
    f"![a [nested [deep]] b]({URL})",
    f"![a](<{URL}>)",
    f"![a](\n{URL}\n)",
    f"!![a]({URL})",
    f"![a][r]\n\n[r]: {URL}",
    f"![r]\n\n[r]: {URL}",
    f"- item ![a]({URL})\n> ![b]({URL})",
    f"[![inner]({URL})]({URL})",
    f"&#33;[a]({URL}) !&#91;a]({URL})",
    f'<img src="{URL}"> <svg><image href="{URL}"/></svg> <style>*{{}}</style>',
    f"<{URL}&x=.png>",
    f"```\n<img src={URL}>\n```",
    f"```\n<img src={URL}>",
    f"~~~\n<img src={URL}>\n~~~",
    f"````\n```\n<img src={URL}>\n```\n````",
    f"~~~~\n~~~\n```\n~~~~\n<img src={URL}>\n```",
    f"inline `` ``` `` <img src={URL}> and ```<img src={URL}>```",
    f"`a``<img src={URL}>` and ``a`<img src={URL}>``",
    f"\\`<img src={URL}>\\` and \\\\`<img src={URL}>`",
    f"text\n\n    ```\n<img src={URL}>\n    ```",
    f"- a\n  ```\n<img src={URL}>\n```",
    f"> ```\n> <img src={URL}>\n> ```",
    f"[a\n```\n]: /u\n<img src={URL}>\n```",
    f"[a\n\n```\n]: /u '\n<img src={URL}>\n'\n```",
    f"$$\n```\n$$\n<img src={URL}>\n```",
    f"$$`$$<img src={URL}>`",
    f"```mermaid\ngraph TD\n  A[\"<img src='{URL}'>\"] --> B\n```",
    f"http://a.example`<img src={URL}>`",
    f"| a | b |\n|---|---|\n| `x|<img src={URL}>` | y |",
    f"`![]({URL})` and ``` ![]({URL}) ```",
    f"    indented <img src={URL}>\n\n    ![]({URL})",
    f"a\0b\ud800c\r\n<img src={URL}>\r```\r<img src={URL}>",
]


@pytest.mark.parametrize("text", PAYLOADS)
def test_no_payload_gets_html_or_an_image_past_the_renderer(text: str) -> None:
    assert_safe(chat_markdown(text))


@pytest.mark.parametrize("seed", range(8))
def test_random_mixtures_of_markdown_syntax_stay_safe(seed: int) -> None:
    pieces = ["`", "``", "```", "~~~", "\n", "\n\n", " ", "    ", "<img src=x>", "![a](u)",
              "[", "]", ":", "!", "\\", "$$", "|", "> ", "- ", "1. ", "&", "x", "mermaid",
              "\t", "[a]: u", "'", '"', "(", ")"]  # fmt: skip
    chance = random.Random(seed)
    for _ in range(400):
        text = "".join(chance.choice(pieces) for _ in range(chance.randint(1, 30)))
        assert_safe(chat_markdown(text))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"![]({URL})", f"[image: ]({URL})"),
        ("see ![a cat](cat.png 'Cat') here", "see [image: a cat](cat.png 'Cat') here"),
        ("!![x](y)", "&#33;[image: x](y)"),
        ("![x][ref]", "[image: x][ref]"),
        ("\\![not an image](y)", "\\![not an image](y)"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
        ("a & b < c", "a &amp; b &lt; c"),
        ("> a quote stays a quote", "> a quote stays a quote"),
        (
            "**bold** and _it_ and [a link](http://x.org)",
            "**bold** and _it_ and [a link](http://x.org)",
        ),
        ("<http://x.org/a.png>", "http://x.org/a.png"),
        ("`x = 1` stays markdown", "`x = 1` stays markdown"),
        ("`<b>` is code", "<code>&#60;b&#62;</code> is code"),
        ("a stray ` backtick", "a stray \\` backtick"),
        ("[a]: http://x", "[a\\]: http://x"),
        ("mid-line ~~~ is no fence ~~", "mid-line \\~\\~\\~ is no fence ~~"),
        ("```html\n<div>x</div>\n```", "```html\n<div>x</div>\n```"),
        ("```\nunclosed <b>", "```\nunclosed <b>\n```"),
        ("~~~py\nx < 1\n~~~", "```py\nx < 1\n```"),
        ("````\n```\ninner\n```\n````", "````\n```\ninner\n```\n````"),
        ("1. step\n   ```sh\n   make && run\n   ```", "1. step\n```sh\nmake && run\n```"),
        ("```mermaid\ngraph TD\n```", "```text\ngraph TD\n```"),
        ("```py {linenos}\nx\n```", "```py\nx\n```"),
    ],
)
def test_what_the_renderer_writes(text: str, shown: str) -> None:
    assert chat_markdown(text) == shown


def test_code_that_cannot_stay_markdown_shows_the_same_text_as_html() -> None:
    code = "if a < b and c[0]:\n    print(`$$`)"
    out = chat_markdown(f"$$ math\n```py\n{code}\n```\nthen $$")
    body = re.fullmatch(r'.*<pre><code class="language-py">(.*)</code></pre>.*', out, re.S)
    assert body is not None, out
    assert html.unescape(body[1]) == code
    assert_safe(out)


def test_an_unclosed_bracket_before_a_fence_cannot_start_a_definition_into_the_code() -> None:
    out = chat_markdown("[a\n```\n]: /u\n<img src=x>\n```")
    assert out.startswith("\\[a\n```\n]: /u\n<img src=x>\n```")


def test_a_closed_bracket_before_a_fence_is_left_alone() -> None:
    assert chat_markdown("[a] b\n```\nx\n```") == "[a] b\n```\nx\n```"


def test_inline_code_turned_to_html_reads_back_as_written() -> None:
    out = chat_markdown("run `a[0] <b> & ![c](d)` now")
    inner = re.fullmatch(r"run <code>(.*)</code> now", out)
    assert inner is not None, out
    assert html.unescape(inner[1]) == "a[0] <b> & ![c](d)"


def test_the_page_latex_delimiters_are_the_ones_the_renderer_guards() -> None:
    chatbot = gr.Chatbot()
    assert [(d["left"], d["right"]) for d in chatbot.latex_delimiters] == list(LATEX_DELIMITERS)


def test_safe_markdown_is_the_chat_renderer() -> None:
    assert safe_markdown(f"![x]({URL})") == chat_markdown(f"![x]({URL})")


def test_inline_markdown_keeps_untrusted_text_on_one_safe_line() -> None:
    out = inline_markdown(f"model\n```\n<img src={URL}>\n![x]({URL})")
    assert "\n" not in out
    assert_safe(out)


def test_a_failed_reply_shows_its_error_without_html_or_images() -> None:
    message = Message(
        id=1, conversation_id=1, role="assistant", content="partial", status="error",
        error=f"engine said ![x]({URL})\n<img src={URL}>", model="m", created_at="",
    )  # fmt: skip
    out = reply_markdown(message)
    assert "⚠ Failed: engine said [image: x]" in out
    assert_safe(out.replace('<span class="reply-stats">', "").replace("</span>", ""))


@pytest.mark.parametrize(
    ("stored", "installed", "value", "noticed"),
    [
        ("llama3:8b", ["llama3:8b", "m"], "llama3:8b", False),
        ("", ["m"], None, False),
        ("gone:1b", ["m"], None, True),
        ('<img src=x onerror="alert(1)">', [], None, True),
    ],
)
def test_the_model_picker_is_only_given_an_installed_model(
    stored: str, installed: list[str], value: str | None, noticed: bool
) -> None:
    picked, notice = model_choice(stored, installed)
    assert picked == value
    assert bool(notice) == noticed
    assert "<img" not in notice
    if noticed:
        assert html.unescape(notice.replace("\\", "")).count(stored) == 1
