"""Hearth's stand-in for Gradio's streamed-update diff: the same edits, no cyclic garbage."""

from __future__ import annotations

import copy
import gc
import random
from collections.abc import Iterator
from typing import Any

import pytest
from gradio.utils import diff as gradio_diff  # read at collection, before any test trims Gradio

from ui.gradio_trims import diff_without_cycles


def chat_updates() -> Iterator[tuple[Any, Any]]:
    """What the chat streams: a reply growing word by word, then its stats, then a new turn."""
    history: list[dict[str, Any]] = [{"role": "user", "content": "hi", "metadata": None}]
    reply = ""
    for word in ["Hello", " there", ",", " how", " can", " I", " help", "?"]:
        before = copy.deepcopy(history)
        reply += word
        history = [*before[:1], {"role": "assistant", "content": reply, "metadata": None}]
        yield before, history
    yield history, [*history, {"role": "user", "content": "more", "metadata": {"n": 2}}]
    yield history, history[:1]  # a retry drops the reply
    yield "3 tokens · 40 tok/s", "12 tokens · 40 tok/s"
    yield {"visible": True, "value": "a"}, {"visible": False, "interactive": True}


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["str", "int", "none", "list", "dict"] if depth < 3 else ["str", "int"])
    if kind == "str":
        return rng.choice(["", "a", "ab", "abc", "b", "ba"])
    if kind == "int":
        return rng.randint(0, 3)
    if kind == "none":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = rng.sample(["a", "b", "c", "d"], rng.randint(0, 4))
    return {key: random_value(rng, depth + 1) for key in keys}


def mutated(rng: random.Random, value: Any) -> Any:
    """A near neighbour of value, as consecutive updates are (appends, deletes, a changed leaf)."""
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = [mutated(rng, item) if rng.random() < 0.4 else item for item in value]
        return out[: rng.randint(0, len(out))] if rng.random() < 0.3 else out
    if isinstance(value, dict) and value and rng.random() < 0.7:
        out = {k: mutated(rng, v) for k, v in value.items() if rng.random() < 0.9}
        return {**out, "e": 1} if rng.random() < 0.2 else out
    if isinstance(value, str) and rng.random() < 0.5:
        return value + rng.choice(["x", "yz"])
    return random_value(rng, 2)


def test_the_reference_is_gradios_own() -> None:
    assert (gradio_diff.__module__, gradio_diff.__qualname__) == ("gradio.utils", "diff")


@pytest.mark.parametrize("old,new", list(chat_updates()))
def test_the_chats_updates_give_gradios_edits(old: Any, new: Any) -> None:
    assert diff_without_cycles(old, new) == gradio_diff(old, new)


def test_nested_deletes_are_renumbered_as_gradio_does() -> None:
    old, new = [[1, 2, 3], [4, 5]], [[1], [4]]
    assert diff_without_cycles(old, new) == gradio_diff(old, new)
    assert [edit[0] for edit in diff_without_cycles(old, new)] == ["delete"] * 3


def test_two_thousand_random_neighbours_give_gradios_edits() -> None:
    rng = random.Random(14)
    for _ in range(2000):
        old = random_value(rng)
        new = mutated(rng, old)
        assert diff_without_cycles(old, new) == gradio_diff(old, new), (old, new)


def test_it_leaves_no_garbage_for_the_cycle_collector() -> None:
    pairs = list(chat_updates())

    def garbage_after(diff: Any, calls: int = 300) -> int:
        gc.collect()
        gc.disable()
        try:
            for index in range(calls):
                diff(*pairs[index % len(pairs)])
            return gc.collect()
        finally:
            gc.enable()

    assert garbage_after(gradio_diff) >= 3 * 300  # the measure sees Gradio's cycles
    assert garbage_after(diff_without_cycles) < 300  # not one per call
