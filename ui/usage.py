"""The Usage tab: requests and tokens per day, models, top users, CSV export, your own limits.

Everyone sees their own usage; admins pick everyone's (the default for them) or one person's.
Every read is checked in services.usage, whichever way it arrives.
"""

from __future__ import annotations

import tempfile
import zoneinfo
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import pandas as pd

from backend.chat.limits import LABELS, EffectiveLimits
from backend.chat.usage import DEFAULT_DAYS, UsageReport
from backend.units import counted, noun_for
from ui.common import PRIVATE, acting_user, current_tab, guarded, last_input_from_page

if TYPE_CHECKING:
    from backend.services import Services

PERIODS = [("Last 7 days", 7), ("Last 30 days", 30), ("Last 90 days", 90), ("Last 365 days", 365)]
EVERYONE = ("Everyone", "")
# One date format for every tick of the day axis ("Fri Dec 27"): Vega-Lite's default mixes
# "Fri 27" with "December" at a month boundary, and they collide. The weekday and month name are
# long enough that Vega-Lite hides the 12:00 ticks it adds to a short period on a wide plot, which
# would otherwise repeat the day's label.
DAY_AXIS_FORMAT = "%a %b %-d"
DAY_AXIS_TITLE = "day (UTC)"  # usage is counted by UTC day, whatever the reader's zone
# The plots draw a day at the instant they are sent, in the browser's own time zone: each UTC
# day is sent as midnight in the viewer's zone, which the page passes with every report (an IANA
# name), so the point sits on its day's tick and its tooltip names that day everywhere.
WITH_VIEWER_ZONE = last_input_from_page("Intl.DateTimeFormat().resolvedOptions().timeZone || ''")


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def viewer_zone(name: Any) -> tzinfo | None:
    """The page's time zone when it is one this machine knows (IANA names only); else None, and
    the plots keep UTC midnight."""
    if not isinstance(name, str) or name not in _known_zones():
        return None
    return zoneinfo.ZoneInfo(name)


def day_frames(
    report: UsageReport, zone: tzinfo | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(requests per day, tokens per day by direction), every day of the range, 0 where idle;
    each day at midnight in the viewer's zone when given."""
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
    per_day = pd.DataFrame({"day": _midnights(days, zone), "requests": requests})
    by_direction = pd.DataFrame(tokens, columns=["day", "direction", "tokens"])
    by_direction["day"] = _midnights(by_direction["day"], zone)
    return per_day, by_direction


def _midnights(days: Any, zone: tzinfo | None) -> pd.DatetimeIndex:
    stamps = pd.DatetimeIndex(pd.to_datetime(days))
    return stamps if zone is None else stamps.tz_localize(zone, nonexistent="shift_forward")


def summary(report: UsageReport, limits: EffectiveLimits | None = None, used_today: int = 0) -> str:
    """One paragraph of totals for the range, and the reader's own limits when given."""
    errors = sum(d.errors for d in report.by_day)
    stopped = sum(d.stopped for d in report.by_day)
    engine_min = sum(d.engine_ms for d in report.by_day) / 60_000
    who = "Everyone" if report.whose == "everyone" else report.whose
    text = (
        f"**{who}**, {report.since} to "
        f"{report.until} (UTC): **{report.requests:,}** {noun_for(report.requests, 'request')} · "
        f"{counted(report.prompt_tokens, 'prompt token')} · **{report.reply_tokens:,}** "
        f"{noun_for(report.reply_tokens, 'reply token')} · {counted(errors, 'error')} · "
        f"{stopped:,} stopped · {engine_min:,.1f} min of engine time."
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


# A count axis runs to at least this many, so its ticks are whole numbers: Vega-Lite ticks a
# 0-1 axis at 0.2, 0.4, ... ("0.2 requests"); from 0 to 5 or more its ticks step by 1 or more.
MIN_COUNT_AXIS_TOP = 5


def count_axis(counts: Any) -> list[float | None]:
    """y_lim for a plot of counts: from 0 to MIN_COUNT_AXIS_TOP while every count is below it;
    else from 0 to a round number above the largest, as Vega-Lite picks it (None)."""
    return [0, MIN_COUNT_AXIS_TOP if max(counts, default=0) < MIN_COUNT_AXIS_TOP else None]


def bar_frame(rows: tuple, key: str, value: str, attribute: str) -> pd.DataFrame:
    return pd.DataFrame({key: [r.key for r in rows], value: [getattr(r, attribute) for r in rows]})


@dataclass(frozen=True)
class UsageLayout:
    days: gr.Dropdown
    whose: gr.Dropdown
    show_btn: gr.Button
    export_btn: gr.Button
    text: gr.Markdown
    requests_plot: gr.LinePlot
    tokens_plot: gr.LinePlot
    users_plot: gr.BarPlot
    models_plot: gr.BarPlot
    csv_file: gr.File
    zone: gr.Textbox  # hidden: the page's time zone, set by WITH_VIEWER_ZONE

    @property
    def shown(self) -> list[Any]:
        """What a report fills: the summary and the four plots."""
        return [self.text, self.requests_plot, self.tokens_plot, self.users_plot, self.models_plot]


def _per_day_plot(y: str, title: str, elem_id: str, color: str | None = None) -> gr.LinePlot:
    """Counts per day from 0, each day on its own tick (see WITH_VIEWER_ZONE)."""
    return gr.LinePlot(None, x="day", y=y, color=color, title=title, y_lim=[0, None],
                       x_title=DAY_AXIS_TITLE, x_axis_format=DAY_AXIS_FORMAT, height=240,
                       elem_id=elem_id)  # fmt: skip


def layout() -> UsageLayout:
    with gr.Row(equal_height=True):
        days = gr.Dropdown(PERIODS, value=DEFAULT_DAYS, label="Period", elem_id="usage-days")
        whose = gr.Dropdown([EVERYONE], value="", label="Whose", allow_custom_value=True,
                            visible=False, elem_id="usage-whose")  # fmt: skip
        show_btn = gr.Button("Refresh", scale=0, min_width=120, elem_id="usage-refresh")
        export_btn = gr.Button("Export CSV", scale=0, min_width=140, elem_id="usage-export")
    text = gr.Markdown("", elem_id="usage-summary")
    # Plots start as None: a plot that starts from an empty DataFrame draws no lines later on.
    with gr.Row():
        requests_plot = _per_day_plot("requests", "Requests per day", "usage-requests")
        tokens_plot = _per_day_plot("tokens", "Tokens per day", "usage-tokens", color="direction")
    with gr.Row():
        users_plot = gr.BarPlot(None, x="user", y="reply tokens", sort="-y", y_lim=[0, None],
                                visible=False, title="Top users (reply tokens)",
                                elem_id="usage-users")  # fmt: skip
        models_plot = gr.BarPlot(None, x="model", y="requests", sort="-y", y_lim=[0, None],
                                 title="Models (requests)", elem_id="usage-models")  # fmt: skip
    csv_file = gr.File(label="Usage CSV", visible=False, interactive=False, elem_id="usage-csv")
    zone = gr.Textbox("", visible=False)
    return UsageLayout(days, whose, show_btn, export_btn, text, requests_plot, tokens_plot,
                       users_plot, models_plot, csv_file, zone)  # fmt: skip


class UsageHandlers:
    """The tab's events: the signed-in user in, the components' values out."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def views(
        self, request: gr.Request, period: Any, person: Any, zone: Any = None
    ) -> tuple[Any, ...]:
        """The summary and the four plots for this period and person, days in the page's zone."""
        user = acting_user(self.services, request)
        report = self.services.usage.report(user, period, person)
        limits, used = None, 0
        if report.whose == user.name:
            limits = self.services.limits.effective(user)
            used = self.services.limits.used_today(user)
        per_day, tokens = day_frames(report, viewer_zone(zone))
        top = report.whose == "everyone"
        users = bar_frame(report.by_user, "user", "reply tokens", "reply_tokens")
        models = bar_frame(report.by_model, "model", "requests", "requests")
        return (
            summary(report, limits, used),
            gr.LinePlot(value=per_day, y_lim=count_axis(per_day["requests"])),
            gr.LinePlot(value=tokens, y_lim=count_axis(tokens["tokens"])),
            gr.BarPlot(
                value=users if top else None, visible=top, y_lim=count_axis(users["reply tokens"])
            ),
            gr.BarPlot(value=models, y_lim=count_axis(models["requests"])),
        )

    def usage_open(self, zone: Any, request: gr.Request) -> tuple[Any, ...]:
        user = acting_user(self.services, request)
        choices = [EVERYONE]
        if user.is_admin:
            choices += [(u.name, u.name) for u in self.services.users.list_users(user)]
        picker = gr.Dropdown(choices=choices, value="", visible=user.is_admin)
        return (DEFAULT_DAYS, picker, *self.views(request, DEFAULT_DAYS, "", zone))

    def usage_show(
        self, period: Any, person: Any, zone: Any, request: gr.Request
    ) -> tuple[Any, ...]:
        return self.views(request, period, person, zone)

    def usage_export(self, period: Any, person: Any, request: gr.Request) -> gr.File:
        user = acting_user(self.services, request)
        text = self.services.usage.export_csv(user, period, person)
        path = Path(tempfile.mkdtemp(prefix="hearth-usage-")) / "hearth-usage.csv"
        path.write_text(text, encoding="utf-8")
        return gr.File(value=str(path), visible=True)


def build(services: Services, demo: gr.Blocks) -> None:
    """Create the Usage tab's components inside the current gr.Tab and wire their events."""
    tab = current_tab()
    view = layout()
    handlers = UsageHandlers(services)
    opened = {"fn": guarded(handlers.usage_open), "inputs": [view.zone],
              "outputs": [view.days, view.whose, *view.shown], "js": WITH_VIEWER_ZONE,
              "api_name": "usage_open", **PRIVATE}  # fmt: skip
    if tab is not None:
        tab.select(**opened)
    else:
        demo.load(**opened)
    show = {"fn": guarded(handlers.usage_show), "inputs": [view.days, view.whose, view.zone],
            "outputs": view.shown, "js": WITH_VIEWER_ZONE, **PRIVATE}  # fmt: skip
    view.show_btn.click(**show, api_name="usage_show")
    view.days.input(**show, api_name="usage_show_days")
    view.whose.input(**show, api_name="usage_show_whose")
    view.export_btn.click(guarded(handlers.usage_export), [view.days, view.whose], view.csv_file,
                          api_name="usage_export", **PRIVATE)  # fmt: skip
