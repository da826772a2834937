"""The serving process's garbage collector: startup objects are set aside."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from backend.ops.lifecycle import settle_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_objects_alive_at_start_are_left_out_of_later_collections() -> None:
    kept = [{"config": [i]} for i in range(1000)]  # stands for the built UI
    frozen = settle_garbage_collector()
    assert frozen >= 1000  # everything alive then, the 1,000 above among them
    walked = {id(o) for o in gc.get_objects()}  # what a collection looks at
    assert all(gc.is_tracked(o) for o in kept) and not walked & {id(o) for o in kept}
    later = {"session": [1]}  # made after: collected as usual
    assert id(later) in {id(o) for o in gc.get_objects()}


@pytest.mark.usefixtures("restored_gc")
def test_set_aside_objects_are_still_freed_when_dropped() -> None:
    import weakref

    class Page:
        pass

    page = Page()
    gone = weakref.ref(page)
    settle_garbage_collector()
    del page  # reference counting frees it; freezing only spares it the collector's walks
    assert gone() is None
