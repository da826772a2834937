"""Hostile values against the Chat tab and the /chat API, over real HTTP, three callers.

Every event of the family is called by fn_index with each hostile value (tests/support/hostile.py)
in each input position (admin) or in every position at once (anonymous, staff, and events that
share a function). The other positions hold a real model, a short question and one reply token,
so a hostile value reaches the option validation behind them without long generations; the app
runs under a memory guard in case a context size reaches the engine. Run with -s for the table.
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
# By position: chat_send/chat_regenerate take (message, conversation, history, model, system
# prompt, temperature, num_ctx, max tokens); /chat takes (message, model, conversation, system
# prompt, temperature, num_ctx, max tokens).
TURN = {0: "Say one word.", 3: MODEL, 5: 0.0, 6: 512, 7: 1}
OVERRIDES = {
    "chat_send": TURN,
    "chat_regenerate": TURN,
    "chat_edit": {2: MODEL, 4: 0.0, 5: 512, 6: 1},
    "chat_model_advice": {0: MODEL, 1: 512},
    "chat": {0: "Say one word.", 1: MODEL, 4: 0.0, 5: 512, 6: 1},
}
# A turn in a page session continues its conversation: start each one fresh, or every call
# evaluates a context's worth of history.
BEFORE_EACH = {"chat_send": "chat_new", "chat_edit": "chat_new"}


def in_family(api_name: str) -> bool:
    return api_name.startswith("chat")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    data_dir: Path = tmp_path_factory.mktemp("hostile-chat")
    with hostile_app(data_dir) as (app, watchdog):
        found = run_family(app, watchdog, in_family, OVERRIDES, BEFORE_EACH)
        print(f"\nChat tab and /chat API: inputs tried\n{found.matrix.table()}")
        yield found


class TestChatAndApi(HostileFamilyChecks):
    """The shared checks over this family's report."""
