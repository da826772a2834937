"""Page sessions: what each open tab costs the app, Hearth's sessions beside Gradio's own, built
on the real UI in the same run.

    .venv/bin/python -m bench.sessions                  # 2,000 tabs (ui.SESSION_CAPACITY)
    .venv/bin/python -m bench.sessions --tabs 200

For each kind: objects and references a new session adds (what a full garbage collection must
walk, per tab), the time of one full collection with that many tabs open, and of Gradio's
per-second sweep for expired State values over them (it runs on the event loop). Each tab's
session holds a value in every gr.State of the UI, as after a chat turn. Prints `name: value`.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path

from gradio import state_holder
from gradio.components import State
from gradio.state_holder import SessionState, StateHolder

from backend.services import Services
from backend.settings import Settings
from bench.timing import median_ms
from ui import SESSION_CAPACITY, build_ui
from ui.gradio_sessions import LazySessionState, SweptStateHolder

KINDS = {"gradio": (StateHolder, SessionState), "hearth": (SweptStateHolder, LazySessionState)}


def measure(demo: object, kind: str, tabs: int) -> dict[str, float]:
    """One kind's figures with `tabs` sessions open (kind: "gradio" or "hearth")."""
    holder_class, session_class = KINDS[kind]
    states = [b for b in demo.blocks.values() if isinstance(b, State)]  # type: ignore[attr-defined]
    switched = state_holder.SessionState
    state_holder.SessionState = session_class  # type: ignore[misc]
    try:
        gc.collect()
        before = {id(o) for o in gc.get_objects()}
        holder = holder_class()
        holder.blocks = demo  # type: ignore[assignment]
        holder.capacity = tabs + 1
        for tab in range(tabs):
            session = holder[f"tab{tab}"]
            for state in states:
                session[state._id] = tab
        gc.collect()
        added = [o for o in gc.get_objects() if id(o) not in before and o is not before]
        return {
            "objects_per_tab": len(added) / tabs,
            "references_per_tab": sum(len(gc.get_referents(o)) for o in added) / tabs,
            "full_collection_ms": median_ms(gc.collect, 5),
            "expired_state_sweep_ms": median_ms(holder.delete_all_expired_state, 20),
        }
    finally:
        state_holder.SessionState = switched  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=SESSION_CAPACITY)
    args = parser.parse_args(argv)
    services = Services.build(Settings(data_dir=Path(tempfile.mkdtemp()), engine="embedded"))
    try:
        demo = build_ui(services)
        gc.collect()
        gc.freeze()  # as app.py does once serving: the UI itself is not walked
        figures = {kind: measure(demo, kind, args.tabs) for kind in KINDS}
        print(f"tabs: {args.tabs}")
        for name in figures["gradio"]:
            gradio, hearth = figures["gradio"][name], figures["hearth"][name]
            print(f"gradio.{name}: {gradio:.2f}")
            print(f"hearth.{name}: {hearth:.2f}")
            print(f"ratio_{name}_gradio_over_hearth: {gradio / hearth:.1f}")
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
