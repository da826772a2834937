"""Estimate vs actual: each load's estimate next to what the engine (/api/ps) and NVML reported
after it, the last MAX_LOAD_RECORDS kept in the store's settings; their mean and worst error per
model and per host, and the margin admission adds when measured loads ran above the estimate."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backend.admission import Decision
from backend.admission.settings import LearnedMargin
from backend.engines.base import model_key
from backend.units import GIB, MIB, format_size

if TYPE_CHECKING:
    from backend.engines.base import LoadedModel
    from backend.hardware.monitor import HardwareSnapshot
    from backend.store.database import Store

LOAD_RECORDS_KEY = "models.load_records"
LEARNED_MARGIN_KEY = "admission.learned_margin"  # the last learned margin, to audit changes
MAX_LOAD_RECORDS = 20
# A measured load above its estimate widens admission's margin by the excess, up to this much
# (a bigger gap means the estimate is wrong for that model, not that every load needs room).
LEARNED_MARGIN_CAP_BYTES = 2 * GIB
# Excess below this is measurement noise (NVML sees other processes allocate too).
LEARNED_MARGIN_FLOOR_BYTES = 32 * MIB


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
    host: str = ""  # the engine that loaded it (Ollama's URL, or "embedded")

    @property
    def error_pct(self) -> float | None:
        """How far the estimate was from the engine's own size, in % of the actual size."""
        if not self.actual_size_bytes:
            return None
        return 100.0 * (self.estimate_total_bytes - self.actual_size_bytes) / self.actual_size_bytes

    @property
    def measured(self) -> tuple[int, int] | None:
        """(estimate, measurement) of what matters for running out of memory: GPU memory as NVML
        saw it grow, else the engine's own size against the estimated total."""
        if self.vram_delta_bytes is not None and self.estimate_vram_bytes:
            return self.estimate_vram_bytes, self.vram_delta_bytes
        if self.actual_size_bytes:
            return self.estimate_total_bytes, self.actual_size_bytes
        return None

    @property
    def excess_bytes(self) -> int:
        """How much the measured load ran above its estimate (0 when it stayed below)."""
        pair = self.measured
        return max(pair[1] - pair[0], 0) if pair else 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_for(
    decision: Decision,
    before: HardwareSnapshot,
    after: HardwareSnapshot,
    loaded: list[LoadedModel],
    forced: bool,
    host: str = "",
    measured_here: bool = True,
) -> LoadRecord:
    """The record of a load that `decision` admitted (or `forced` through), measured now.
    A load on another host (`measured_here` False) has no NVML or RAM delta of this machine."""
    mine = next((m for m in loaded if model_key(m.name) == model_key(decision.model)), None)
    here = measured_here and before.has_gpu and after.has_gpu
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
        vram_delta_bytes=(after.used_vram_bytes - before.used_vram_bytes) if here else None,
        ram_delta_bytes=(before.memory.available_bytes - after.memory.available_bytes)
        if measured_here
        else 0,
        verdict=decision.verdict,
        overridden=forced,
        host=host,
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
        required = {f.name for f in fields(LoadRecord) if f.default is MISSING}
        names = {f.name for f in fields(LoadRecord)}
        records = []
        for raw in reversed(stored if isinstance(stored, list) else []):
            if isinstance(raw, dict) and required <= set(raw):  # older records lack new fields
                records.append(LoadRecord(**{k: raw[k] for k in names & set(raw)}))
        return records[:limit]

    def error_summaries(self) -> list[ErrorSummary]:
        return summaries(self.latest(MAX_LOAD_RECORDS))

    def learned_margin(self, host: str, actor: str) -> LearnedMargin:
        """The margin this host's recent loads call for; a change of it is audited."""
        learned = learned_margin(self.latest(MAX_LOAD_RECORDS), host)
        with self._lock:
            before = self._store.get_setting(LEARNED_MARGIN_KEY, 0)
            before = before if isinstance(before, int) else 0
            if learned.bytes == before:
                return learned
            self._store.set_setting(LEARNED_MARGIN_KEY, learned.bytes)
        detail = f"learned margin {format_size(before)} -> {format_size(learned.bytes)}"
        if learned.bytes:
            detail += f": {learned.describe()}"
        self._store.audit(actor=actor, action="admission.margin.learned", detail=detail)
        return learned


@dataclass(frozen=True)
class ErrorSummary:
    """How far estimates were from the measured loads of one model or one host."""

    kind: str  # "model" or "host"
    name: str
    loads: int
    mean_error_pct: float  # signed: negative when loads ran above their estimate
    worst_error_pct: float  # the error furthest from zero, signed
    worst_excess_bytes: int  # the most a load ran above its estimate


def _error_pct(record: LoadRecord) -> float | None:
    pair = record.measured
    if not pair or pair[1] <= 0:
        return None
    return 100.0 * (pair[0] - pair[1]) / pair[1]


def summaries(records: Iterable[LoadRecord]) -> list[ErrorSummary]:
    """Mean and worst estimate error per model, then per host, over the records measured."""
    groups: dict[tuple[str, str], list[LoadRecord]] = {}
    for record in records:
        if _error_pct(record) is None:
            continue
        groups.setdefault(("model", model_key(record.model)), []).append(record)
        groups.setdefault(("host", record.host or "this engine"), []).append(record)
    result = []
    for (kind, name), group in sorted(groups.items()):
        errors = [e for e in (_error_pct(r) for r in group) if e is not None]
        result.append(
            ErrorSummary(
                kind, name, len(errors), sum(errors) / len(errors), max(errors, key=abs),
                max(r.excess_bytes for r in group),
            )
        )  # fmt: skip
    return result


def learned_margin(records: Iterable[LoadRecord], host: str = "") -> LearnedMargin:
    """The worst measured excess of this host's recent loads, bounded by the cap."""
    mine = [r for r in records if not host or r.host in (host, "")]
    worst = max(mine, key=lambda r: r.excess_bytes, default=None)
    if worst is None or worst.excess_bytes < LEARNED_MARGIN_FLOOR_BYTES:
        return LearnedMargin(0, 0)
    excess = worst.excess_bytes
    return LearnedMargin(min(excess, LEARNED_MARGIN_CAP_BYTES), excess, worst.model)
