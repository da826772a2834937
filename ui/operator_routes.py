"""/healthz, /readyz and /metrics on the Gradio server, outside its login.

They are routes given to the FastAPI app Gradio creates (`launch(app_kwargs={"routes": ...})`,
Gradio's documented way to pass FastAPI arguments), so they come before Gradio's own routes and
carry none of its login dependencies: a load balancer or Prometheus has no session. /metrics
asks for `Authorization: Bearer <HEARTH_METRICS_TOKEN>` when that token is set.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from backend.services import Services

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hearth-metrics"'}


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries exactly this bearer token (constant time)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def operator_routes(services: Services) -> list[Route]:
    token = services.settings.metrics_token

    async def healthz(_request: Request) -> Response:
        # async and without I/O: it answers while every worker thread is busy with chats.
        return JSONResponse({"status": "ok"})

    def readyz(_request: Request) -> Response:  # sync: Starlette runs it in a worker thread
        readiness = services.readiness()
        return JSONResponse(readiness.body(), status_code=200 if readiness.ready else 503)

    def metrics(request: Request) -> Response:
        if token and not bearer_matches(request.headers.get("authorization"), token):
            return JSONResponse(
                {"detail": "Send Authorization: Bearer <HEARTH_METRICS_TOKEN>."},
                status_code=401,
                headers=_CHALLENGE,
            )
        body, content_type = services.metrics_exposition()
        return Response(body, headers={"content-type": content_type})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def with_operator_routes(services: Services, options: dict[str, Any]) -> dict[str, Any]:
    """launch() options with the operator routes added to the FastAPI app's arguments."""
    app_kwargs = dict(options.get("app_kwargs") or {})
    app_kwargs["routes"] = [*app_kwargs.get("routes", []), *operator_routes(services)]
    return {**options, "app_kwargs": app_kwargs}
