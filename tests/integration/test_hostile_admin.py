"""Hostile values against the Admin tab and the page header, over real HTTP, three callers.

Every event of the family is called by fn_index with each hostile value (tests/support/hostile.py)
in each input position (admin) or in every position at once (anonymous, staff, and events that
share a function); admin events act on a seeded "target" user so values reach the validation
behind "Pick a user first". Run with -s for the table of inputs tried.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostile_app import GIB, Report, hostile_app, run_family

_NEW_NAMES = itertools.count(1)
OVERRIDES = {
    "admin_add_user": {0: lambda: f"newbie-{next(_NEW_NAMES)}", 1: "newbie-pass-123", 2: "staff"},
    "admin_set_role": {0: "target", 1: "staff"},
    "admin_disable_user": {0: "target"},
    "admin_enable_user": {0: "target"},
    "admin_set_password": {0: "target", 1: "target-pass-123"},
}
RSS_BOUND = 2 * GIB


def in_family(api_name: str) -> bool:
    return api_name.startswith("admin_") or api_name == "refresh_header"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    data_dir: Path = tmp_path_factory.mktemp("hostile-admin")
    with hostile_app(data_dir) as (app, watchdog):
        found = run_family(app, watchdog, in_family, OVERRIDES)
        print(f"\nAdmin tab and header: inputs tried\n{found.matrix.table()}")
        yield found


def test_the_app_survives_the_batch(report: Report) -> None:
    assert not report.matrix.app_died, f"the app died after {report.matrix.app_died}"


def test_every_answer_is_a_result_or_a_sentence(report: Report) -> None:
    assert report.matrix.attempts
    problems = report.matrix.problems()
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


def test_no_hostile_value_ends_in_an_unexpected_server_error(report: Report) -> None:
    # Each value should be refused by validation with a sentence naming it; a logged
    # reference means an exception nobody expected (readable, but a validation gap).
    unexpected = report.matrix.server_errors()
    assert not unexpected, f"{len(unexpected)} unexpected error(s):\n" + "\n".join(unexpected)


def test_another_user_is_served_promptly_after_the_batch(report: Report) -> None:
    assert report.bystander_ok, "the bystander could not sign in and get the header"
    assert report.bystander_s < 2.0, f"sign-in and header took {report.bystander_s:.1f} s"


def test_memory_stays_bounded(report: Report) -> None:
    assert not report.killed, "the watchdog killed the app: resident memory passed 3 GiB"
    assert report.rss_max < RSS_BOUND, f"peak RSS {report.rss_max / GIB:.2f} GiB"


def test_the_database_is_intact_and_old_rows_are_unchanged(report: Report) -> None:
    assert report.integrity == []
    assert report.changed_rows == []
