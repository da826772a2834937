"""What Hearth spares Gradio's server of its per-event and per-session work; applied once,
by app.py, before demo.queue().

Under many chats the app's CPU is Gradio's, on one event loop: each of these was measured in
the load bench (`python -m bench.load`) as work Hearth never uses.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import gradio.utils

from ui import gradio_queue_wake
from ui.gradio_sessions import use_lazy_session_configs

# Set before demo.queue(): Gradio recomputes its monitoring dashboard's summary (a pandas
# DataFrame of up to 10,000 past events) after every event, 2-8 ms of CPU each. Hearth serves
# /metrics and never mounts that dashboard.
GRADIO_ENV_DEFAULTS = {
    "GRADIO_ANALYTICS_CACHE_FREQUENCY": str(10**9),  # events between recomputations
    "GRADIO_ANALYTICS_MAX_EVENTS": "100",  # past events kept for it
}


def trim_gradio_per_event_work() -> None:
    """Spare every event and page session work Hearth does not use; call before demo.queue()."""
    for name, value in GRADIO_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    mark_matplotlib_absent()
    use_lazy_session_configs()
    gradio.utils.diff = diff_without_cycles
    gradio_queue_wake.install()


def mark_matplotlib_absent() -> bool:
    """Make `import matplotlib` fail at once where it is not installed; True if marked.

    Gradio tries that import twice for every event step (to switch matplotlib's backend, which
    Hearth never uses). Python does not remember a failed import, so each try walks sys.path
    again: ~65 µs a time, a tenth of the app's CPU while chats stream. None in sys.modules is
    Python's own way to say a module is absent.
    """
    if "matplotlib" in sys.modules or importlib.util.find_spec("matplotlib") is not None:
        return False
    sys.modules["matplotlib"] = None  # type: ignore[assignment]
    return True


def diff_without_cycles(old: Any, new: Any) -> list[list[Any]]:
    """Gradio's `utils.diff` (what changed in a streamed output since its last update), giving
    the same edits, without leaving garbage for the cycle collector.

    Gradio's own defines its recursive helper inside each call, so every call leaves a cycle
    (the helper, its closure cell, the cell's tuple) that only a garbage collection frees. It
    runs for every output of every streamed update: under 100 chats, 150,000 such objects
    between collections, most of the cyclic garbage the load bench found, and the collections
    that free them pause the event loop.
    """
    return _edits(old, new, [])


def _edits(obj1: Any, obj2: Any, path: list[Any]) -> list[list[Any]]:
    # Gradio 6's algorithm step for step, including how deletes are renumbered (over this
    # level's edits and those nested in it), so the page applies exactly what it did.
    edits: list[list[Any]] = []
    if obj1 == obj2:
        return edits
    if type(obj1) is not type(obj2):
        return [["replace", path, obj2]]
    if isinstance(obj1, str) and obj2.startswith(obj1):
        return [["append", path, obj2[len(obj1) :]]]
    if isinstance(obj1, list):
        common_length = min(len(obj1), len(obj2))
        for i in range(common_length):
            edits.extend(_edits(obj1[i], obj2[i], [*path, i]))
        edits.extend(["delete", [*path, i], None] for i in range(common_length, len(obj1)))
        edits.extend(["add", [*path, i], obj2[i]] for i in range(common_length, len(obj2)))
        deletes_seen = 0
        for edit in edits:
            if edit[0] == "delete" and isinstance(edit[1][-1], int):
                edit[1][-1] -= deletes_seen
                deletes_seen += 1
        return edits
    if isinstance(obj1, dict):
        for key in obj1:
            if key in obj2:
                edits.extend(_edits(obj1[key], obj2[key], [*path, key]))
            else:
                edits.append(["delete", [*path, key], None])
        edits.extend(["add", [*path, key], obj2[key]] for key in obj2 if key not in obj1)
        return edits
    return [["replace", path, obj2]]
