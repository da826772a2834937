"""Hearth's OpenAI-compatible API (/v1) on the Gradio server: keys, not cookies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ui.openai_api.routes import openai_routes

if TYPE_CHECKING:
    from backend.services import Services


def with_openai_routes(services: Services, options: dict[str, Any]) -> dict[str, Any]:
    """launch() options with the /v1 routes added to the FastAPI app's arguments."""
    app_kwargs = dict(options.get("app_kwargs") or {})
    app_kwargs["routes"] = [*app_kwargs.get("routes", []), *openai_routes(services)]
    return {**options, "app_kwargs": app_kwargs}
