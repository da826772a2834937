"""Hostile values against the Models and Hardware tabs and the admission settings, over HTTP.

Every event of the family is called by fn_index with each hostile value (tests/support/hostile.py)
in each input position (admin) or in every position at once (anonymous, staff, and events that
share a function). Model events name the bundled model at a small context, so a value reaches
the checks behind "Name a model first"; the app runs under a memory guard in case a context size
reaches the engine. Delete keeps its empty default: no hostile row may name a real file.
Run with -s for the table of inputs tried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostile_app import Report, hostile_app, run_family
from tests.support.hostile_checks import HostileFamilyChecks

# A real app under a batch of hostile calls: minutes, out of the fast loop.
pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"  # the bundled model of the embedded engine
OVERRIDES = {
    "models_check": {0: MODEL, 1: 512},
    "models_load": {0: MODEL, 1: 512},
    "models_load_override": {0: MODEL, 1: 512},
    "models_delete_ask": {0: MODEL},
    # The settings as they are: a row that passes saves what was there already.
    "admission_save": {0: "balanced", 1: 512, 2: "MiB", 3: "f16", 7: "spread"},
}


def in_family(api_name: str) -> bool:
    return api_name.startswith(("models_", "admission_")) or api_name in ("on_tick", "on_show")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    data_dir: Path = tmp_path_factory.mktemp("hostile-models")
    with hostile_app(data_dir) as (app, watchdog):
        found = run_family(app, watchdog, in_family, OVERRIDES)
        print(f"\nModels, Hardware, admission settings: inputs tried\n{found.matrix.table()}")
        yield found


class TestModelsHardwareAdmission(HostileFamilyChecks):
    """The shared checks over this family's report."""
