"""Hearth's name, line and mark, as the header and the sign-in page show them."""

from __future__ import annotations

TITLE = "Hearth"
TAGLINE = "local LLM console"

FLAME_SVG = (
    '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="#fb923c" '
    'd="M12 2c1 3.5-1.5 5.5-3 7.5C7.2 11.9 6 13.8 6 16a6 6 0 0 0 12 0c0-2.6-1.3-4.6-2.6-6.1'
    '-.3 1.6-1.2 2.8-2.4 3.3.6-3.3-.1-7.3-1-11.2z"/></svg>'
)
