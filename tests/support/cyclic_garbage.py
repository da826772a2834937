"""What a piece of work leaves for the cycle collector, counted by type."""

from __future__ import annotations

import gc
from collections.abc import Callable


def left_in_cycles(work: Callable[[], object], kind: type) -> int:
    """Run work with the collector off; return how many `kind` objects it left in cycles."""
    gc.collect()
    gc.disable()
    try:
        work()
        gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds, to look at it
        gc.collect()
        return sum(isinstance(found, kind) for found in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
