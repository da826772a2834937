"""Gradio page sessions that keep no copies of component configs, nor the values shown.

Gradio (6.31) gives every page session its own copy of every component's config at the
session's first event, and writes each value sent or shown into that session's copy at every
event: the chat's whole history, the sidebar's rows. Gradio reads those copies only in its
deep-link route (a page's state saved to a file for a shareable link), which Hearth does not
offer. Kept for every tab until Gradio's session store is full (ui.SESSION_CAPACITY), they
made opening a page cost 25-55 ms of CPU, each first use of a component a config build, and
every full garbage collection walk tens of thousands of objects per few hundred tabs.

A session here keeps what Gradio's handlers read: its gr.State values and the component
instances a handler changed (a button hidden). The deep-link route still answers, with the
session's components as they are configured, and none of the values shown: no chat text
goes into a link file.
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
    """A SessionState without config copies: each is built when the deep-link route asks."""

    def __init__(self, blocks: Any) -> None:
        super().__init__(_WithoutConfigs(blocks))  # type: ignore[arg-type]
        # The components Gradio would have copied, in its order (the deep-link route's list).
        self._config_ids = [k for k in self.blocks_config.blocks if k in blocks.blocks]

    def __setitem__(self, key: int, value: Any) -> None:
        super().__setitem__(key, value)  # a State's value, or a changed component
        self.config_values.pop(key, None)

    def _update_config(self, key: int) -> None:
        """No copy of the changed component's config: it is built from it when asked."""

    def _update_value_in_config(self, key: int, value: Any) -> None:
        """No copy of a value sent or shown (Gradio writes every one here, every event)."""

    @property
    def components(self) -> Iterator[dict]:
        for key in self._config_ids:
            config = self.blocks_config.config_for_block(key, [], self.blocks_config.blocks[key])
            if config:
                yield config


def use_lazy_session_configs() -> bool:
    """Make Gradio's session store create LazySessionState; True if it was switched now."""
    if state_holder.SessionState is LazySessionState:
        return False
    state_holder.SessionState = LazySessionState  # type: ignore[misc]
    return True
