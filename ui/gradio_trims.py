"""What Hearth spares Gradio's server of its per-event and per-session work; applied once,
by app.py, before demo.queue().

Under many chats the app's CPU is Gradio's, on one event loop: each of these was measured in
the load bench (`python -m bench.load`) as work Hearth never uses.
"""

from __future__ import annotations

import importlib.util
import os
import sys

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
