"""The Usage tab's and the Limits panel's pure parts: frames, summaries, table rows, targets."""

from __future__ import annotations

import pytest

from backend.chat.limits import EffectiveLimits, LimitValues, parse_target
from backend.chat.usage import UsageReport
from backend.store.database import LimitRecord, UsageTotals
from ui.admin.limits_panel import limit_rows
from ui.usage import count_axis, day_frames, summary, viewer_zone


def _day(day: str, requests: int, prompt: int, reply: int) -> UsageTotals:
    return UsageTotals(day, requests, prompt, reply, 90_000.0, 1, 0)


REPORT = UsageReport(
    whose="everyone",
    since="2025-03-10",
    until="2025-03-14",
    by_day=(_day("2025-03-11", 3, 30, 300), _day("2025-03-13", 2, 20, 200)),
    by_model=(),
    by_user=(),
)


def test_every_day_of_the_range_is_plotted_idle_days_as_zero():
    per_day, tokens = day_frames(REPORT)
    assert [d.isoformat()[:10] for d in per_day["day"]] == [
        "2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13", "2025-03-14"
    ]  # fmt: skip
    assert per_day["requests"].tolist() == [0, 3, 0, 2, 0]
    reply = tokens[tokens["direction"] == "reply"]["tokens"].tolist()
    assert reply == [0, 300, 0, 200, 0]
    assert set(tokens["direction"]) == {"prompt", "reply"}


@pytest.mark.parametrize(
    ("counts", "top"), [([], 5), ([0, 0], 5), ([1], 5), ([0, 3, 4], 5), ([5], None), ([7, 2], None)]
)
def test_a_count_axis_runs_from_zero_to_at_least_five_so_its_ticks_are_whole(counts, top):
    """One request must not draw ticks at 0.2, 0.4, ... on a per-day count."""
    per_day, _ = day_frames(REPORT)
    assert count_axis(counts) == [0, top]
    assert count_axis(per_day["requests"]) == [0, 5]
    assert count_axis(per_day["requests"] * 1000) == [0, None]  # Vega-Lite rounds the top up


def test_each_day_is_drawn_at_midnight_in_the_pages_own_zone():
    """Vega-Lite draws an instant in the browser's zone: UTC midnight would sit on the evening
    before west of UTC. Each UTC day is sent as its date's midnight where the viewer is."""
    per_day, tokens = day_frames(REPORT, viewer_zone("America/Los_Angeles"))
    first = per_day["day"].iloc[0]
    assert first.isoformat() == "2025-03-10T00:00:00-07:00"  # PDT began on 2025-03-09
    assert per_day["day"].iloc[-1].isoformat() == "2025-03-14T00:00:00-07:00"
    assert tokens["day"].iloc[0] == first
    assert per_day["requests"].tolist() == [0, 3, 0, 2, 0]
    # What Gradio sends the page: epoch milliseconds of that instant.
    assert per_day.to_json(orient="split", date_unit="ms").count("1741590000000") == 1


def test_a_zone_the_machine_does_not_know_leaves_the_days_at_utc_midnight():
    for sent in ("", "Mars/Olympus", "../../etc/passwd", "/usr/share/zoneinfo/UTC", 7, None,
                 ["Europe/Paris"]):  # fmt: skip
        assert viewer_zone(sent) is None, sent
    per_day, _ = day_frames(REPORT, viewer_zone("Mars/Olympus"))
    assert per_day["day"].iloc[0].isoformat() == "2025-03-10T00:00:00"
    assert str(viewer_zone("Europe/Paris")) == "Europe/Paris"


def test_the_summary_totals_the_range():
    text = summary(REPORT)
    assert text.startswith("**Everyone**, 2025-03-10 to 2025-03-14 (UTC): **5** requests")
    assert (
        "**500** reply tokens" in text and "2 errors" in text and "3.0 min of engine time" in text
    )
    assert "Your limits" not in text


def test_the_summary_says_one_request_not_one_requests():
    one = UsageReport(
        "alice",
        "2025-03-14",
        "2025-03-14",
        (UsageTotals("2025-03-14", 1, 1, 1, 0.0, 1, 0),),
        (),
        (),
    )
    text = summary(one)
    assert "**1** request · 1 prompt token · **1** reply token · 1 error · 0 stopped" in text


def test_the_summary_shows_the_readers_own_limits_and_where_they_come_from():
    limits = EffectiveLimits(LimitValues(reply_tokens_per_day=20_000), ("", "", "role staff"))
    own = UsageReport("alice", "2025-03-14", "2025-03-14", (), (), ())
    text = summary(own, limits, used_today=1_234)
    assert "Your limits: turns in flight: no limit; requests per minute: no limit; " in text
    assert "reply tokens per day: 20,000 (role staff), 1,234 used today." in text


def test_the_limits_table_names_roles_and_users_and_leaves_unset_values_empty():
    records = [
        LimitRecord(
            "staff", None, None, 2, None, 20_000, "2025-03-14T09:30:00.000000+00:00", "root"
        ),
        LimitRecord(None, 3, "alice", None, 10, None, "2025-03-14T10:00:00.000000+00:00", "root"),
    ]
    assert limit_rows(records) == [
        ["role staff", "2", "", "20,000", "root", "2025-03-14 09:30"],
        ["alice", "", "10", "", "root", "2025-03-14 10:00"],
    ]


@pytest.mark.parametrize(
    ("target", "parsed"),
    [("role:staff", ("role", "staff")), ("user:bob", ("user", "bob")), ("bob", ("user", "bob")),
     ("user: bob ", ("user", "bob")), ("team:x", ("user", "team:x"))],
)  # fmt: skip
def test_a_limits_target_is_a_role_or_a_user(target, parsed):
    assert parse_target(target) == parsed


@pytest.mark.parametrize("target", [None, "", "  ", 3, ["role:staff"]])
def test_no_target_is_refused_in_a_sentence(target):
    with pytest.raises(ValueError, match="Pick a role or a user"):
        parse_target(target)
