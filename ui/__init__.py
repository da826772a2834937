"""build_ui(services) -> gr.Blocks: theme, header with engine status, one tab per module."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ui import admin, api_keys, chat, hardware, models, usage
from ui.brand import FLAME_SVG, TAGLINE, TITLE
from ui.common import acting_user, guarded
from ui.errors import HearthBlocks, http_server_error
from ui.http_guards import guard_middleware
from ui.sign_in import SIGN_IN_HTML, sign_in_routes

if TYPE_CHECKING:
    from backend.services import Services

UI_DIR = Path(__file__).resolve().parent


def theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue=gr.themes.colors.orange,
        secondary_hue=gr.themes.colors.amber,
        neutral_hue=gr.themes.colors.stone,
        font=[
            gr.themes.Font(name) for name in ("Inter", "ui-sans-serif", "system-ui", "sans-serif")
        ],
    ).set(body_background_fill="*neutral_50", block_radius="12px")


SESSION_CAPACITY = 2000  # page sessions kept: tabs open at once for ~500 staff, with room


def launch_options(services: Services) -> dict[str, object]:
    """What Gradio 6 wants at launch() rather than in gr.Blocks()."""
    # Every stylesheet beside this file: hearth.css and one per tab that has its own styles.
    css = "\n".join(p.read_text(encoding="utf-8") for p in sorted(UI_DIR.glob("*.css")))
    keys = (UI_DIR / "chat_keys.js").read_text(encoding="utf-8")
    app_kwargs = {
        "exception_handlers": {Exception: http_server_error},
        "middleware": guard_middleware(services.auth),
        "routes": sign_in_routes(),
    }
    return {
        # Gradio keeps a copy of every component's config per page session (~0.4 MiB with this
        # UI) and drops the least recently used past this many; its default of 10,000 lets an
        # app's memory grow by gigabytes with every tab ever opened.
        "state_session_capacity": SESSION_CAPACITY,
        "theme": theme(),
        "css": css,
        "head": f"<script>{keys}</script>",
        # Gradio's own "Use via API" and "Built with Gradio" links are not Hearth's: its API is
        # the API tab (/v1) and /chat, documented in README.
        "footer_links": [],
        # The sign-in page shows no css or head of the app's, only this (as HTML).
        "auth_message": SIGN_IN_HTML,
        "app_kwargs": app_kwargs,
    }


def _engine_title(services: Services, name: str) -> str:
    """ "Ollama", or "2 of 3 engines up" when Hearth runs on a pool."""
    counts = services.engines_up()
    if counts is None:
        return name.capitalize()
    return f"{counts[0]} of {counts[1]} engines up"


def header_html(services: Services, username: str | None) -> str:
    status = services.engine_status()
    dot = "ok" if status.reachable else "down"
    version = f" {html.escape(status.version)}" if status.version else ""
    user = f'<span class="who">{html.escape(username)}</span> · ' if username else ""
    return (
        f'<div class="hearth-header"><div class="brand"><span class="logo">{FLAME_SVG}</span>'
        f"<span>{TITLE}</span><small>{TAGLINE}</small></div>"
        f'<div class="engine"><span class="dot {dot}"></span>'
        f"<b>{html.escape(_engine_title(services, status.name))}{version}</b>"
        f'<span class="why">{html.escape(services.engine_reason)}</span></div>'
        f'<div class="account">{user}<a href="/logout">Sign out</a></div></div>'
    )


def build_ui(services: Services) -> gr.Blocks:
    with HearthBlocks(title=f"{TITLE} · {TAGLINE}", fill_width=True) as demo:
        header = gr.HTML(header_html(services, None), elem_id="hearth-header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat.build(services, demo)
            with gr.Tab("Models", id="models"):
                models.build(services, demo)
            with gr.Tab("Hardware", id="hardware"):
                hardware.build(services)
            with gr.Tab("Usage", id="usage"):
                usage.build(services, demo)
            with gr.Tab("API", id="api"):
                api_keys.build(services, demo)
            # Hidden until page load shows it to admins; every admin handler checks the role too.
            with gr.Tab("Admin", id="admin", visible=False) as admin_tab:
                admin.build(services, demo, admin_tab)

        @guarded
        def refresh_header(request: gr.Request) -> str:
            return header_html(services, acting_user(services, request).name)

        demo.load(refresh_header, None, header, api_visibility="private")
    return demo
