"""The one HTML table the tabs draw: headers and rows in, escaped markup out."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


class Html(str):
    """Text that is already HTML (escaped where it holds names): a table cell passes it through."""

    __slots__ = ()


def cell(value: object) -> str:
    """A cell's markup: Html as it is, anything else escaped as text."""
    return value if isinstance(value, Html) else escape(str(value))


def html_table(
    headers: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    css_class: str,
    empty: str = "",
    empty_class: str = "",
) -> str:
    """A <table> with a header row; with no rows and an `empty` sentence, that sentence."""
    if not rows and empty:
        return f'<p class="{escape(empty_class)}">{escape(empty)}</p>'
    head = "".join(f"<th>{cell(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table class="{escape(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
