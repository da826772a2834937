"""Estimate vs actual: each load's estimate next to what the engine (/api/ps) and NVML reported
after it, the last MAX_LOAD_RECORDS kept in the store's settings."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backend.admission import Decision
from backend.engines.base import model_key
from backend.units import format_size

if TYPE_CHECKING:
    from backend.engines.base import LoadedModel
    from backend.hardware.monitor import HardwareSnapshot
    from backend.store.database import Store

LOAD_RECORDS_KEY = "models.load_records"
MAX_LOAD_RECORDS = 20


@dataclass(frozen=True)
class LoadRecord:
    """One load: the estimate next to what the engine (/api/ps) and NVML reported after it."""

    at: str
    model: str
    num_ctx: int
    kv_cache_type: str
    estimate_total_bytes: int
    estimate_vram_bytes: int
    estimate_ram_bytes: int
    actual_size_bytes: int | None
    actual_vram_bytes: int | None
    vram_delta_bytes: int | None  # NVML used memory after minus before (None without a GPU)
    ram_delta_bytes: int  # available RAM before minus after
    verdict: str
    overridden: bool = False

    @property
    def error_pct(self) -> float | None:
        """How far the estimate was from the engine's own size, in % of the actual size."""
        if not self.actual_size_bytes:
            return None
        return 100.0 * (self.estimate_total_bytes - self.actual_size_bytes) / self.actual_size_bytes


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_for(
    decision: Decision,
    before: HardwareSnapshot,
    after: HardwareSnapshot,
    loaded: list[LoadedModel],
    forced: bool,
) -> LoadRecord:
    """The record of a load that `decision` admitted (or `forced` through), measured now."""
    mine = next((m for m in loaded if model_key(m.name) == model_key(decision.model)), None)
    return LoadRecord(
        at=_now(),
        model=decision.model,
        num_ctx=decision.num_ctx,
        kv_cache_type=decision.kv_cache_type,
        estimate_total_bytes=decision.estimate.total_bytes,
        estimate_vram_bytes=decision.placement.vram_bytes,
        estimate_ram_bytes=decision.placement.ram_bytes,
        actual_size_bytes=mine.size_bytes if mine else None,
        actual_vram_bytes=mine.vram_bytes if mine else None,
        vram_delta_bytes=(after.used_vram_bytes - before.used_vram_bytes)
        if before.has_gpu and after.has_gpu
        else None,
        ram_delta_bytes=before.memory.available_bytes - after.memory.available_bytes,
        verdict=decision.verdict,
        overridden=forced,
    )


def describe_actual(record: LoadRecord) -> str:
    """The audit detail of what the engine and NVML reported after a load."""

    def size(value: int | None) -> str:
        return "unknown" if value is None else format_size(value)

    return (
        f"{size(record.actual_size_bytes)} ({size(record.actual_vram_bytes)} VRAM); "
        f"NVML {size(record.vram_delta_bytes)} VRAM delta, RAM delta "
        f"{format_size(record.ram_delta_bytes)}"
    )


class LoadRecords:
    """The last loads' records in the store, appended under one lock."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()

    def add(self, record: LoadRecord) -> None:
        with self._lock:
            kept = self._store.get_setting(LOAD_RECORDS_KEY, [])
            kept = [*(kept if isinstance(kept, list) else []), asdict(record)]
            self._store.set_setting(LOAD_RECORDS_KEY, kept[-MAX_LOAD_RECORDS:])

    def latest(self, limit: int = 10) -> list[LoadRecord]:
        """The last loads' estimate next to the actual numbers, newest first."""
        stored = self._store.get_setting(LOAD_RECORDS_KEY, [])
        names = {f.name for f in fields(LoadRecord)}
        records = []
        for raw in reversed(stored if isinstance(stored, list) else []):
            if isinstance(raw, dict) and names <= set(raw):
                records.append(LoadRecord(**{k: raw[k] for k in names}))
        return records[:limit]
