"""The load benchmark's core at 5 people: the real app over the Ollama-protocol double, each
person signed in with their own session and reading the SSE stream as the page does; every
question is answered and every acknowledged question has its rows in the database.

No timing is asserted: the figures are the benchmark's business (python -m bench.load).
"""

from __future__ import annotations

import pytest

from bench.load import LoadConfig, Scenario, run_load

pytestmark = pytest.mark.slow


def test_five_people_at_once_get_their_replies_and_nothing_is_lost():
    lines: list[str] = []
    config = LoadConfig(slots=2, tokens_per_s=200, reply_tokens=20)
    results = run_load(config, [Scenario("smoke", 5)], emit=lines.append)
    figures = results["smoke"]
    assert figures["requests"] == 5, lines
    assert figures["errors"] == 0, lines
    assert figures["lost_messages"] == 0, lines
    assert figures["incomplete_replies"] == 0 and figures["stray_rows"] == 0, lines
    assert figures["served"] == 5 and figures["busy_replies"] == 0, lines
    assert figures["baseline_requests"] == 5 and figures["baseline_errors"] == 0, lines
    assert "smoke.lost_messages: 0" in lines
    assert figures["floor_bare_first_event_p95_ms"] > 0, lines  # the bare server answered all 5
    assert figures["floor_gradio_first_event_p95_ms"] > 0, lines  # and the Gradio floor
    assert any(line.startswith("app_ceiling_turns_in_flight: 66 ") for line in lines), lines
