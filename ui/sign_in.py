"""Hearth's sign-in page: Gradio's own form (it posts to /login, which the login guard and the
throttle watch), dressed as Hearth's.

Gradio serves that page without the app's css and head: the one thing of the app's it shows
is launch()'s auth_message, set as HTML. So the brand travels in it, with a link to the page's
stylesheet, served outside the login at /sign-in.css. (Gradio also puts auth_message in the 401
of every request without a session, so it stays short.) The form's fields keep Gradio's names
("username", "password", "Login"), which password managers and the tests find them by.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ui.brand import FLAME_SVG, TAGLINE, TITLE

# Gradio's login page: a full-height wrap holding a panel column (min-width 480 px) with an h2
# "Login", this message (inside a p.auth), a block with the two fields, the "Incorrect
# Credentials" line (p.creds) when a sign-in fails, and the button. Its classes beside these
# are Svelte's hashes, so the rules go by those names and by the panel that holds .hh-sign-in.
_STYLE = """
.wrap:has(.hh-sign-in) { background: transparent !important; }
.panel:has(.hh-sign-in) {
  flex-grow: 0 !important; margin-top: 10vh; padding: 0 22px 22px !important;
  border-radius: 18px !important; border: 1px solid #e7e5e4 !important;
  background: #fff !important; box-shadow: 0 18px 50px rgba(28, 25, 23, .14); overflow: hidden;
}
.panel:has(.hh-sign-in) h2 { display: none; }
.panel:has(.hh-sign-in) p.auth {
  margin: 0 -22px 14px !important; width: calc(100% + 44px); max-width: none !important;
}
.hh-sign-in .band {
  display: flex; align-items: center; gap: 10px; padding: 18px 22px;
  background: linear-gradient(90deg, #1c1917, #44403c); color: #fafaf9;
}
.hh-sign-in .band strong { font-size: 1.45rem; }
.hh-sign-in .band small { font-size: .8rem; opacity: .7; align-self: flex-end; margin: 0 0 5px; }
.hh-sign-in p { margin: 16px 22px 0; color: #57534e; font-size: .95rem; }
.panel:has(.hh-sign-in) p.creds {
  margin: 0 0 12px; padding: 8px 12px; border-radius: 10px; background: #fee2e2; color: #991b1b;
}
.panel:has(.hh-sign-in) label span:first-letter { text-transform: uppercase; }
"""

STYLESHEET = "sign-in.css"  # relative: the sign-in page is the app's root, whatever its prefix

SIGN_IN_HTML = (
    f'<link rel="stylesheet" href="{STYLESHEET}"><div class="hh-sign-in">'
    f'<div class="band">{FLAME_SVG}<strong>{TITLE}</strong><small>{TAGLINE}</small></div>'
    "<p>Sign in with the account your Hearth admin gave you.</p></div>"
)


def sign_in_routes() -> list[Route]:
    """The sign-in page's stylesheet, for a browser that has no session yet."""

    async def stylesheet(_request: Request) -> Response:
        return Response(_STYLE, media_type="text/css", headers={"cache-control": "max-age=3600"})

    return [Route(f"/{STYLESHEET}", stylesheet, methods=["GET"])]
