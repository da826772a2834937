"""The Usage tab: requests and tokens per day, models, top users, CSV export, your own limits.

Everyone sees their own usage; admins pick everyone's (the default for them) or one person's.
Every read is checked in services.usage, whichever way it arrives.
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import pandas as pd

from backend.chat.limits import LABELS, EffectiveLimits
from backend.chat.usage import DEFAULT_DAYS, UsageReport
from ui.common import PRIVATE, acting_user, guarded

if TYPE_CHECKING:
    from backend.services import Services

PERIODS = [("Last 7 days", 7), ("Last 30 days", 30), ("Last 90 days", 90), ("Last 365 days", 365)]
EVERYONE = ("Everyone", "")


def day_frames(report: UsageReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(requests per day, tokens per day by direction), every day of the range, 0 where idle."""
    first, last = date.fromisoformat(report.since), date.fromisoformat(report.until)
    used = {d.key: d for d in report.by_day}
    days, requests, tokens = [], [], []
    for offset in range((last - first).days + 1):
        day = (first + timedelta(days=offset)).isoformat()
        totals = used.get(day)
        days.append(day)
        requests.append(totals.requests if totals else 0)
        tokens.append((day, "prompt", totals.prompt_tokens if totals else 0))
        tokens.append((day, "reply", totals.reply_tokens if totals else 0))
    per_day = pd.DataFrame({"day": pd.to_datetime(days), "requests": requests})
    by_direction = pd.DataFrame(tokens, columns=["day", "direction", "tokens"])
    by_direction["day"] = pd.to_datetime(by_direction["day"])
    return per_day, by_direction


def summary(report: UsageReport, limits: EffectiveLimits | None = None, used_today: int = 0) -> str:
    """One paragraph of totals for the range, and the reader's own limits when given."""
    errors = sum(d.errors for d in report.by_day)
    stopped = sum(d.stopped for d in report.by_day)
    engine_min = sum(d.engine_ms for d in report.by_day) / 60_000
    who = "Everyone" if report.whose == "everyone" else report.whose
    text = (
        f"**{who}**, {report.since} to "
        f"{report.until} (UTC): **{report.requests:,}** requests · "
        f"{report.prompt_tokens:,} prompt tokens · **{report.reply_tokens:,}** reply tokens · "
        f"{errors:,} errors · {stopped:,} stopped · {engine_min:,.1f} min of engine time."
    )
    if limits is not None:
        parts = []
        for (name, label), value, source in zip(
            LABELS.items(), limits.values.as_dict().values(), limits.sources, strict=True
        ):
            shown = "no limit" if value is None else f"{value:,} ({source})"
            parts.append(f"{label.lower()}: {shown}")
            if name == "reply_tokens_per_day" and value is not None:
                parts[-1] += f", {used_today:,} used today"
        text += "\n\nYour limits: " + "; ".join(parts) + "."
    return text


def bar_frame(rows: tuple, key: str, value: str, attribute: str) -> pd.DataFrame:
    return pd.DataFrame({key: [r.key for r in rows], value: [getattr(r, attribute) for r in rows]})


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Usage tab's components inside the current gr.Tab and wire their events."""
    tab = gr.context.get_render_context()
    tab = tab if isinstance(tab, gr.Tab) else None
    with gr.Row(equal_height=True):
        days = gr.Dropdown(PERIODS, value=DEFAULT_DAYS, label="Period", elem_id="usage-days")
        whose = gr.Dropdown([EVERYONE], value="", label="Whose", allow_custom_value=True,
                            visible=False, elem_id="usage-whose")  # fmt: skip
        show_btn = gr.Button("Refresh", scale=0, min_width=120, elem_id="usage-refresh")
        export_btn = gr.Button("Export CSV", scale=0, min_width=140, elem_id="usage-export")
    text = gr.Markdown("", elem_id="usage-summary")
    with gr.Row():
        # Start as None: a plot that starts from an empty DataFrame draws no lines later on.
        requests_plot = gr.LinePlot(
            None,
            x="day",
            y="requests",
            title="Requests per day",
            x_title="",
            height=240,
            elem_id="usage-requests",
        )
        tokens_plot = gr.LinePlot(
            None,
            x="day",
            y="tokens",
            color="direction",
            x_title="",
            title="Tokens per day",
            height=240,
            elem_id="usage-tokens",
        )
    with gr.Row():
        users_plot = gr.BarPlot(
            None,
            x="user",
            y="reply tokens",
            sort="-y",
            y_lim=[0, None],
            visible=False,
            title="Top users (reply tokens)",
            elem_id="usage-users",
        )
        models_plot = gr.BarPlot(
            None,
            x="model",
            y="requests",
            sort="-y",
            y_lim=[0, None],
            title="Models (requests)",
            elem_id="usage-models",
        )
    csv_file = gr.File(label="Usage CSV", visible=False, interactive=False, elem_id="usage-csv")
    shown = [text, requests_plot, tokens_plot, users_plot, models_plot]

    def views(request: gr.Request, period: Any, person: Any) -> tuple[Any, ...]:
        user = acting_user(services, request)
        report = services.usage.report(user, period, person)
        limits = used = None
        if report.whose == user.name:
            limits = services.limits.effective(user)
            used = services.store.reply_tokens_on(user.id, services.limits.today())
        per_day, tokens = day_frames(report)
        top = report.whose == "everyone"
        users = bar_frame(report.by_user, "user", "reply tokens", "reply_tokens")
        return (
            summary(report, limits, used or 0),
            per_day,
            tokens,
            gr.BarPlot(value=users if top else None, visible=top),
            bar_frame(report.by_model, "model", "requests", "requests"),
        )

    @guarded
    def usage_open(request: gr.Request):
        user = acting_user(services, request)
        choices = [EVERYONE]
        if user.is_admin:
            choices += [(u.name, u.name) for u in services.accounts.list_users(user)]
        picker = gr.Dropdown(choices=choices, value="", visible=user.is_admin)
        return (DEFAULT_DAYS, picker, *views(request, DEFAULT_DAYS, ""))

    @guarded
    def usage_show(period, person, request: gr.Request):
        return views(request, period, person)

    @guarded
    def usage_export(period, person, request: gr.Request):
        user = acting_user(services, request)
        text = services.usage.export_csv(user, period, person)
        path = Path(tempfile.mkdtemp(prefix="hearth-usage-")) / "hearth-usage.csv"
        path.write_text(text, encoding="utf-8")
        return gr.File(value=str(path), visible=True)

    opened = {"fn": usage_open, "outputs": [days, whose, *shown], "api_name": "usage_open"}
    if tab is not None:
        tab.select(**opened, **PRIVATE)
    else:
        demo.load(**opened, **PRIVATE)
    show = {"fn": usage_show, "inputs": [days, whose], "outputs": shown, **PRIVATE}
    show_btn.click(**show, api_name="usage_show")
    days.input(**show, api_name="usage_show_days")
    whose.input(**show, api_name="usage_show_whose")
    export_btn.click(usage_export, [days, whose], csv_file, api_name="usage_export", **PRIVATE)
