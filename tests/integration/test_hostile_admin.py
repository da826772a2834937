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

from tests.support.hostile_app import Report, hostile_app, run_family
from tests.support.hostile_checks import HostileFamilyChecks

# A real app under a batch of hostile calls: minutes, out of the fast loop.
pytestmark = pytest.mark.slow

_NEW_NAMES = itertools.count(1)
OVERRIDES = {
    "admin_add_user": {0: lambda: f"newbie-{next(_NEW_NAMES)}", 1: "newbie-pass-123", 2: "staff"},
    "admin_set_role": {0: "target", 1: "staff"},
    "admin_disable_user": {0: "target"},
    "admin_enable_user": {0: "target"},
    "admin_set_password": {0: "target", 1: "target-pass-123"},
}


def in_family(api_name: str) -> bool:
    # engines_*: the plausible values leave the name empty, so no hostile call saves a list
    # (the settings rows must stay as they were); each field's checks are in
    # tests/integration/test_engine_config.py.
    return api_name.startswith(("admin_", "engines_")) or api_name == "refresh_header"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    data_dir: Path = tmp_path_factory.mktemp("hostile-admin")
    with hostile_app(data_dir) as (app, watchdog):
        found = run_family(app, watchdog, in_family, OVERRIDES)
        print(f"\nAdmin tab and header: inputs tried\n{found.matrix.table()}")
        yield found


class TestAdminAndHeader(HostileFamilyChecks):
    """The shared checks over this family's report."""
