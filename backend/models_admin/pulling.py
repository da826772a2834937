"""A pull, audited: the disk checked first against the catalog's size, then the engine's stream
as PullUpdates until it is done, fails or is cancelled (closing it stops the download)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

from backend.engines.base import Engine, EngineError, close_stream
from backend.estimate.catalog import Catalog
from backend.hardware.monitor import DiskInfo
from backend.models_admin.pull_progress import (
    PULL_DISK_HEADROOM_BYTES,
    NotEnoughDisk,
    PullTracker,
    PullUpdate,
    disk_message,
)
from backend.store.database import Store
from backend.units import format_size


def audited_pull(
    store: Store,
    actor: str,
    model: str,
    engine: Engine,
    disk: DiskInfo | None,
    catalog: Catalog,
    cancel: threading.Event | None = None,
) -> Iterator[PullUpdate]:
    """Stream the engine's pull of `model` (checked by the caller) with one audit row."""
    free = disk.free_bytes if disk is not None else None
    path = disk.path if disk is not None else None
    option = catalog.quant_for_tag(model)
    entry = catalog.find(model)
    expected = option.size_bytes if option else (entry.quant().size_bytes if entry else None)
    if free is not None and expected and expected + PULL_DISK_HEADROOM_BYTES > free:
        detail = disk_message(model, expected, free, path)
        store.audit(actor=actor, action="model.pull", target=model, outcome="refused",
                    detail=detail)  # fmt: skip
        raise NotEnoughDisk(detail)
    tracker = PullTracker(model, free, path)
    outcome, detail = "cancelled", "closed by the caller"
    stream = engine.pull(model)
    try:
        for item in stream:
            update = tracker.update(item)
            yield update
            total, completed = update.total_bytes, update.completed_bytes
            if update.done:
                outcome, detail = "ok", f"{format_size(total)} in {len(update.layers)} layer(s)"
                return
            if cancel is not None and cancel.is_set():
                detail = f"cancelled at {format_size(completed)} of {format_size(total)}"
                yield replace(update, status="cancelled", bytes_per_s=None, cancelled=True)
                return
        outcome, detail = "failed", "the engine ended the pull without success"
        raise EngineError(f"The pull of {model} ended before it was complete.")
    except NotEnoughDisk as exc:  # the manifest's layers outgrew the free disk: stopped
        outcome, detail = "refused", str(exc)
        raise
    except EngineError as exc:
        outcome, detail = "failed", str(exc)
        raise
    finally:
        close_stream(stream)  # closing the HTTP stream makes Ollama stop the download
        store.audit(actor=actor, action="model.pull", target=model, outcome=outcome,
                    detail=detail)  # fmt: skip
