"""Keeping a benchmark's own work off the app's core, as clients on other machines would be."""

from __future__ import annotations

import os
import shutil


def pin_apart() -> list[str]:
    """On a machine of 2+ cores, this process (and the children it starts from now on: clients,
    engine doubles, direct engines) on core 0, and the app on core 1: returns the command
    prefix that starts the app there ([] where it cannot be done, and nothing is pinned)."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return []
    os.sched_setaffinity(0, {0})
    return ["taskset", "-c", "1"]


def describe(prefix: list[str]) -> str:
    return "app on core 1; this process and its children on core 0" if prefix else "not pinned"
