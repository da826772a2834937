"""Pull progress: the engine's per-layer pull items folded into totals, a download speed and a
check that the layers still to download fit on the disk."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from backend.engines.base import PullProgress
from backend.units import format_size

PULL_DISK_HEADROOM_BYTES = 256 * 1024**2  # Ollama writes the manifest and blobs beside them
SPEED_WINDOW_S = 3.0


class NotEnoughDisk(ValueError):
    """A pull would not fit on the disk where the models live."""


@dataclass(frozen=True)
class LayerProgress:
    digest: str
    total_bytes: int
    completed_bytes: int


@dataclass(frozen=True)
class PullUpdate:
    model: str
    status: str
    layers: tuple[LayerProgress, ...]
    completed_bytes: int
    total_bytes: int
    bytes_per_s: float | None
    done: bool = False
    cancelled: bool = False

    @property
    def fraction(self) -> float | None:
        if self.done:
            return 1.0
        return self.completed_bytes / self.total_bytes if self.total_bytes else None


def disk_message(model: str, needed: int, free: int, path: object) -> str:
    return (
        f"Not enough disk space to pull {model}: it needs {format_size(needed)} (plus "
        f"{format_size(PULL_DISK_HEADROOM_BYTES)} headroom) and {format_size(free)} is free "
        f"at {path}."
    )


class PullTracker:
    """One pull's layers, the bytes still to download, and the speed over SPEED_WINDOW_S."""

    def __init__(self, model: str, free_bytes: int | None, disk_path: object) -> None:
        self._model = model
        self._free_bytes = free_bytes
        self._disk_path = disk_path
        self._layers: dict[str, LayerProgress] = {}
        self._needed_bytes = 0  # bytes still to download, over the layers seen so far
        self._window: deque[tuple[float, int]] = deque()

    def update(self, item: PullProgress) -> PullUpdate:
        """Fold in one item from the engine; NotEnoughDisk when a new layer would not fit.

        Ollama reports each layer's total once it has read the manifest ("pulling <digest>"
        with total); the bytes still to download over every layer seen so far, plus the
        headroom, must stay within the disk's free bytes measured before the pull started
        (bytes already written are gone from both sides).
        """
        if item.digest and item.total_bytes:
            done = item.completed_bytes or 0
            if item.digest not in self._layers:
                self._needed_bytes += item.total_bytes - done
                free = self._free_bytes
                if free is not None and self._needed_bytes + PULL_DISK_HEADROOM_BYTES > free:
                    message = disk_message(self._model, self._needed_bytes, free, self._disk_path)
                    raise NotEnoughDisk(message)
            self._layers[item.digest] = LayerProgress(item.digest, item.total_bytes, done)
        layers = tuple(self._layers.values())
        total = sum(layer.total_bytes for layer in layers)
        completed = sum(layer.completed_bytes for layer in layers)
        now = time.monotonic()
        window = self._window
        window.append((now, completed))
        while window and now - window[0][0] > SPEED_WINDOW_S:
            window.popleft()
        span = now - window[0][0]
        speed = (completed - window[0][1]) / span if span > 0.2 else None
        done = item.status == "success"
        return PullUpdate(self._model, item.status, layers, completed, total, speed, done=done)
