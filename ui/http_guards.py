"""HTTP guards around Gradio's login and sessions: one ASGI middleware added at launch.

- Sessions end on the server when they should: Gradio keeps its login tokens in the FastAPI
  app (`app.tokens`, token -> the name as typed). Each token is stamped at login with the
  accounts' session clock; a request whose session has ended since (password reset, role
  change, disable, sign-out; any case of the name) loses its token here, so Gradio answers
  it as signed out (401, or the login page).
- Sign out (`GET /logout`) ends every session of that account before Gradio's own handler
  clears the cookies.
- `POST /login` is refused (403, audited) from another site's page: a browser sends Origin
  (or Referer) with a form post; clients that send neither (gradio_client) are let through.
- Logins from one client address are slowed once it has failed many (booked, so parallel
  attempts queue up); the per-account back-off is in Authentication.authenticate.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request

from backend.auth.login_throttle import AddressThrottle, identity

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from backend.auth import Authentication

_COOKIES = ("access-token-{}", "access-token-unsecure-{}")  # Gradio's, by its app.cookie_id
_MAX_LOGIN_BODY = 16 * 1024  # a refused login's form is read only for the name it tried
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def guard_middleware(auth: Authentication) -> list[Middleware]:
    """The guard as the app's innermost middleware: sessions that end, login origin, throttle."""
    guard = HttpGuard(auth, AddressThrottle())
    return [Middleware(GuardMiddleware, guard=guard)]


def same_origin(source: str, headers: Headers) -> bool:
    """Whether a page at `source` (an Origin or Referer) is this server, by its Host header."""
    parts = urlsplit(source)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False  # includes Origin: null (a sandboxed or privacy-hiding page)
    served = [headers.get("host", "")]
    served += headers.get("x-forwarded-host", "").split(",")  # a proxy's public name
    # Schemes are not compared: behind a TLS proxy the page says https, the server sees http.
    ours = {_netloc(parts.scheme, host) for host in served if host.strip()}
    return _netloc(parts.scheme, parts.netloc) in ours


def _netloc(scheme: str, netloc: str) -> str:
    netloc = netloc.strip().lower()
    default = f":{_DEFAULT_PORTS[scheme]}"
    return netloc[: -len(default)] if netloc.endswith(default) else netloc


class HttpGuard:
    """The guards' state: which login clock stamps each Gradio token, the address throttle."""

    def __init__(self, auth: Authentication, throttle: AddressThrottle) -> None:
        self.auth = auth
        self.throttle = throttle
        self._stamps: dict[str, int] = {}

    def tokens_of(self, request: Request, tokens: dict[str, str], cookie_id: str) -> list[str]:
        found = (request.cookies.get(name.format(cookie_id)) for name in _COOKIES)
        return [token for token in dict.fromkeys(found) if token and token in tokens]

    def end_stale(self, tokens: dict[str, str], candidates: list[str]) -> None:
        """Drop tokens whose session has ended (or that no login of ours stamped)."""
        for token in candidates:
            stamp = self._stamps.get(token)
            if stamp is None or self.auth.resolve(tokens.get(token), stamp) is None:
                tokens.pop(token, None)
                self._stamps.pop(token, None)

    def sign_out(self, tokens: dict[str, str], candidates: list[str]) -> None:
        """End the account's sessions everywhere, and drop its tokens (any case of its name)."""
        for token in candidates:
            user = self.auth.sign_out(tokens.get(token), self._stamps.get(token, -1))
            if user is None:
                continue
            for other, name in list(tokens.items()):
                if identity(name) == identity(user.name):
                    tokens.pop(other, None)
                    self._stamps.pop(other, None)

    def stamp(self, token: str, stamp: int, tokens: dict[str, str]) -> None:
        self._stamps[token] = stamp
        if len(self._stamps) > len(tokens) + 64:  # Gradio dropped some (its own sign-out)
            self._stamps = {t: s for t, s in self._stamps.items() if t in tokens}


class GuardMiddleware:
    """ASGI adapter: runs HttpGuard around each HTTP request to the Gradio app."""

    def __init__(self, app: ASGIApp, *, guard: HttpGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gradio = scope.get("app")
        tokens = getattr(gradio, "tokens", None)
        if scope["type"] != "http" or not isinstance(tokens, dict):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"].rstrip("/")  # Gradio serves both /login and /login/
        cookie_id = str(getattr(gradio, "cookie_id", ""))
        self.guard.end_stale(tokens, self.guard.tokens_of(request, tokens, cookie_id))
        if path.endswith("/logout") and scope["method"] == "GET":
            self.guard.sign_out(tokens, self.guard.tokens_of(request, tokens, cookie_id))
        elif path.endswith("/login") and scope["method"] == "POST":
            await self._login(scope, receive, send, tokens, cookie_id)
            return
        await self.app(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send,
                     tokens: dict[str, str], cookie_id: str) -> None:  # fmt: skip
        headers = Headers(scope=scope)
        source = headers.get("origin") or headers.get("referer")
        if source is not None and not same_origin(source, headers):
            await self._refuse_foreign(source, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "?"
        wait_s = self.guard.throttle.book(address)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        stamp = self.guard.auth.session_stamp()  # before the check: see Authentication.resolve
        cookie = f"{_COOKIES[1].format(cookie_id)}="

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                self.guard.throttle.record(address, failed=status == 400)
                for key, value in message.get("headers", []):
                    text = value.decode("latin-1")
                    if key.lower() == b"set-cookie" and text.startswith(cookie):
                        self.guard.stamp(text[len(cookie) :].split(";")[0], stamp, tokens)
            await send(message)

        await self.app(scope, receive, send_stamped)

    async def _refuse_foreign(self, source: str, receive: Receive, send: Send) -> None:
        name = (await _form_field(receive, "username")).strip()
        shown = source if len(source) <= 200 else source[:200] + "…"
        self.guard.auth.refuse_login(name, f"sign-in sent from another site: {shown}")
        body = json.dumps({"detail": "Sign in from Hearth's own page."}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


async def _form_field(receive: Receive, field: str) -> str:
    """One field of a url-encoded form body, reading at most _MAX_LOGIN_BODY bytes of it."""
    body = b""
    while len(body) <= _MAX_LOGIN_BODY:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    values = parse_qs(body[:_MAX_LOGIN_BODY].decode("utf-8", "replace"))
    return (values.get(field) or [""])[0]
