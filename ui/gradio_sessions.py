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

Gradio also keeps the session of a closed tab until its store is full, and walks every
session's State values every second to find expired ones. Here a session is dropped an hour
after its tab closed (when Gradio drops its State values too), and an open session's values,
which never expire in Hearth, are not walked.
"""

from __future__ import annotations

import datetime
import weakref
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import gradio.routes
from gradio import state_holder
from gradio.components import State
from gradio.state_holder import SessionState, StateHolder


class _WithoutConfigs:
    """What SessionState.__init__ reads of the Blocks, with no blocks to copy configs of."""

    def __init__(self, blocks: Any) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict[int, Any] = {}


_CHANGE_WATCHED: weakref.WeakKeyDictionary[Any, frozenset[int]] = weakref.WeakKeyDictionary()


def _change_watched(config: Any) -> frozenset[int]:
    """The components some event of this UI listens to for "change": fixed with its events,
    so found once per UI, not at every page session."""
    watched = _CHANGE_WATCHED.get(config)
    if watched is None:
        watched = _CHANGE_WATCHED[config] = frozenset(
            block_id
            for fn in config.fns.values()
            for block_id, event in fn.targets
            if event == "change"
        )
    return watched


class LazySessionState(SessionState):
    """A SessionState without config copies: each is built when the deep-link route asks.

    Its components and events are the UI's own, shared read-only (Gradio copies both dicts
    into every session: ~750 references per tab for every full garbage collection to walk);
    the session takes its own copy of the components the first time a handler changes one.
    """

    def __init__(self, blocks: Any) -> None:
        super().__init__(_WithoutConfigs(blocks))  # type: ignore[arg-type]
        self._root = blocks
        self.blocks_config.blocks = MappingProxyType(blocks.default_config.blocks)  # type: ignore[assignment]
        self.blocks_config.fns = MappingProxyType(blocks.default_config.fns)  # type: ignore[assignment]
        self._expiring = False  # a State with a time to live was set
        self.change_watched = _change_watched(blocks.default_config)

    def __setitem__(self, key: int, value: Any) -> None:
        block = self.blocks_config.blocks.get(key)
        if not isinstance(block, State) and isinstance(self.blocks_config.blocks, MappingProxyType):
            self.blocks_config.blocks = dict(self.blocks_config.blocks)  # a component changed
        super().__setitem__(key, value)  # a State's value, or a changed component
        self.config_values.pop(key, None)
        if isinstance(block, State) and block.time_to_live != float("inf"):
            self._expiring = True

    @property
    def state_components(self) -> Iterator[tuple[State, Any, bool]]:
        """Gradio's walk for expired values (every second), only where one can expire: a
        closed tab's session, or one with a State given a time to live."""
        if self.is_closed or self._expiring:
            yield from super().state_components

    def _update_config(self, key: int) -> None:
        """No copy of the changed component's config: it is built from it when asked."""

    def _update_value_in_config(self, key: int, value: Any) -> None:
        """No copy of a value sent or shown (Gradio writes every one here, every event)."""

    @property
    def components(self) -> Iterator[dict]:
        """The components Gradio would have copied, in its order (the deep-link route's list)."""
        for key in [k for k in self.blocks_config.blocks if k in self._root.blocks]:
            config = self.blocks_config.config_for_block(key, [], self.blocks_config.blocks[key])
            if config:
                yield config


class SweptStateHolder(StateHolder):
    """Gradio's store of page sessions, which drops a session an hour after its tab closed."""

    def delete_all_expired_state(self) -> None:
        """What Gradio calls every second on the event loop."""
        self.drop_closed_sessions(datetime.datetime.now())
        super().delete_all_expired_state()

    def drop_closed_sessions(self, now: datetime.datetime) -> list[str]:
        """Drop the sessions whose tab closed and that had no event for the hour Gradio keeps a
        closed tab's values (their State values are handed to their delete callbacks first,
        as Gradio does when they expire); return their ids."""
        with self.lock:
            gone = [
                session_id
                for session_id, session in self.session_data.items()
                if session.is_closed
                and (now - self.time_last_used.get(session_id, now)).total_seconds()
                > session.STATE_TTL_WHEN_CLOSED
            ]
        for session_id in gone:
            self.delete_state(session_id)
            with self.lock:
                self.session_data.pop(session_id, None)
                self.time_last_used.pop(session_id, None)
        return gone


def use_lazy_session_configs() -> bool:
    """Make Gradio create LazySessionStates in a SweptStateHolder; True if switched now."""
    if state_holder.SessionState is LazySessionState:
        return False
    state_holder.SessionState = LazySessionState  # type: ignore[misc]
    gradio.routes.StateHolder = SweptStateHolder  # type: ignore[misc]
    return True
