"""Hostile values against the Usage and API tabs and the Admin tab's limits panel, over HTTP.

The same batch as the other families (tests/support/hostile.py): every event called by fn_index
with each hostile value in each input position (admin) or in every position at once
(anonymous, staff). Limits act on the seeded "target" user, so values reach the validation
behind the pick. Run with -s for the table of inputs tried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostile_app import Report, hostile_app, run_family
from tests.support.hostile_checks import HostileFamilyChecks

# A real app under a batch of hostile calls: minutes, out of the fast loop.
pytestmark = pytest.mark.slow

OVERRIDES = {
    "limits_save": {0: "user:target"},
    "limits_pick": {0: "user:target"},
}


def in_family(api_name: str) -> bool:
    return api_name.startswith(("usage_", "api_key", "api_access_", "limits_"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    data_dir: Path = tmp_path_factory.mktemp("hostile-accounts")
    with hostile_app(data_dir) as (app, watchdog):
        found = run_family(app, watchdog, in_family, OVERRIDES)
        print(f"\nUsage, API keys and limits: inputs tried\n{found.matrix.table()}")
        yield found


class TestUsageKeysAndLimits(HostileFamilyChecks):
    """The shared checks over this family's report."""

    def test_the_family_has_every_event(self, report: Report) -> None:
        tried = {attempt.api_name for attempt in report.matrix.attempts}
        expected = {
            *("usage_open", "usage_show", "usage_export", "limits_save"),
            *("api_keys_open", "api_key_create", "api_key_revoke", "api_access_save"),
        }
        assert expected <= tried, f"not tried: {sorted(expected - tried)}"
