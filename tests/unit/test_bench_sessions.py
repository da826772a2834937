"""The sessions benchmark's core on a few tabs: both kinds measured on the real UI, and the
figures it compares are what the sessions hold (no timing is asserted)."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr
import pytest
from gradio import state_holder

from backend.services import Services
from backend.settings import Settings
from bench.sessions import measure
from ui import build_ui


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gr.Blocks]:
    services = Services.build(Settings(data_dir=tmp_path_factory.mktemp("b"), engine="embedded"))
    try:
        yield build_ui(services)
    finally:
        services.close()


def test_both_kinds_are_measured_and_the_session_kind_is_put_back(demo: gr.Blocks) -> None:
    switched = state_holder.SessionState
    gradio, hearth = measure(demo, "gradio", 20), measure(demo, "hearth", 20)
    assert state_holder.SessionState is switched
    assert set(gradio) == set(hearth) == {
        "objects_per_tab", "references_per_tab", "full_collection_ms", "expired_state_sweep_ms"
    }  # fmt: skip
    assert gradio["references_per_tab"] > 2 * len(demo.blocks)  # copies of the UI's dicts
    assert hearth["references_per_tab"] < 100
    assert all(value >= 0 for value in [*gradio.values(), *hearth.values()])
