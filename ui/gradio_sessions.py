"""Gradio page sessions that copy a component's config only when the session changes it.

Gradio (6.31) gives every page session its own copy of every component's config at the
session's first event: ~1,400 Python objects and 25-55 ms of CPU with Hearth's UI, for each
tab ever opened (up to ui.SESSION_CAPACITY). The copies serve two things: a component a handler
updates (its config is rebuilt then anyway) and Gradio's deep-link route, which Hearth does not
offer but which still answers here, with every config, built when asked. Until then a session
holds only the configs it changed, so opening a page costs little, and a full garbage
collection no longer walks every open page's copy of the UI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gradio import state_holder
from gradio.state_holder import SessionState


class _WithoutConfigs:
    """What SessionState.__init__ reads of the Blocks, with no blocks to copy configs of."""

    def __init__(self, blocks: Any) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict[int, Any] = {}


class LazySessionState(SessionState):
    """A SessionState whose config copies are made per component, when first needed."""

    def __init__(self, blocks: Any) -> None:
        super().__init__(_WithoutConfigs(blocks))  # type: ignore[arg-type]
        # The components Gradio would have copied, in its order (the deep-link route's list).
        self._config_ids = [k for k in self.blocks_config.blocks if k in blocks.blocks]

    @property
    def components(self) -> Iterator[dict]:
        for key in self._config_ids:
            if key not in self.config_values:
                self.config_values[key] = self.blocks_config.config_for_block(
                    key, [], self.blocks_config.blocks[key]
                )
        ordered = {key: None for key in [*self._config_ids, *self.config_values]}
        for key in ordered:
            config = self.config_values.get(key)
            if config:
                yield config


def use_lazy_session_configs() -> bool:
    """Make Gradio's session store create LazySessionState; True if it was switched now."""
    if state_holder.SessionState is LazySessionState:
        return False
    state_holder.SessionState = LazySessionState  # type: ignore[misc]
    return True
