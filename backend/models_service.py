"""ModelService: what fits this machine, and the admin operations pull, load, unload, delete.

Every admin operation checks the acting user and writes the audit log (who, what, which model,
outcome, numbers). A load runs the admission check first, under the reservations lock, and
records the estimate next to what the engine and NVML then report.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from backend import admission
from backend.accounts import PermissionDenied, User, require_admin
from backend.admission import (
    AdmissionSettings,
    Decision,
    LoadRequest,
    Machine,
    Reservations,
    format_size,
)
from backend.catalog import Catalog, CatalogError, FitRow, fit_rows, spec_for
from backend.engines.base import (
    Engine,
    EngineError,
    InstalledModel,
    LoadedModel,
    ModelNotFound,
)
from backend.hardware import HardwareMonitor, HardwareSnapshot
from backend.memory import DEFAULT_RAM_BANDWIDTH_GBPS, EstimateError
from backend.store import Store

ADMISSION_KEY = "admission.settings"
LOAD_RECORDS_KEY = "models.load_records"
MAX_LOAD_RECORDS = 20
PULL_DISK_HEADROOM_BYTES = 256 * 1024**2  # Ollama writes the manifest and blobs beside them
SPEED_WINDOW_S = 3.0


class AdmissionRefused(ValueError):
    """The admission check refused a load; the message carries its numbers."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message())
        self.decision = decision


class NotEnoughDisk(ValueError):
    """A pull would not fit on the disk where the models live."""


@dataclass(frozen=True)
class CatalogRow:
    fit: FitRow
    parameter_count: int
    context_length: int
    is_default_quant: bool
    installed: bool


@dataclass(frozen=True)
class CatalogView:
    rows: tuple[CatalogRow, ...]
    num_ctx: int
    kv_cache_type: str
    machine: Machine
    engine_error: str = ""  # why the installed marks are missing, "" when the engine answered


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


@dataclass(frozen=True)
class LoadResult:
    decision: Decision
    record: LoadRecord
    overridden: bool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _norm(name: str) -> str:
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _numbers(decision: Decision) -> str:
    """The audit detail of a decision: what it needs, what was free, the verdict."""
    p = decision.placement
    return (
        f"num_ctx {decision.num_ctx}, KV {decision.kv_cache_type}; estimate "
        f"{format_size(decision.estimate.total_bytes)} ({format_size(p.vram_bytes)} VRAM + "
        f"{format_size(p.ram_bytes)} RAM, {p.verdict}); available "
        f"{format_size(decision.free_vram_bytes)} VRAM + {format_size(decision.free_ram_bytes)} "
        f"RAM; policy {decision.policy}: {decision.verdict}"
    )


class ModelService:
    def __init__(
        self,
        store: Store,
        engine: Callable[[], Engine],
        hardware: HardwareMonitor,
        catalog: Catalog,
        reservations: Reservations | None = None,
        *,
        ram_bandwidth_gbps: float | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._hardware = hardware
        self._catalog = catalog
        self._reservations = reservations if reservations is not None else Reservations()
        self._ram_bandwidth_gbps = ram_bandwidth_gbps or DEFAULT_RAM_BANDWIDTH_GBPS
        self._records_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _admin(self, user: User | None, what: str, action: str, target: str) -> User:
        """require_admin, auditing a refusal."""
        try:
            return require_admin(user, what)
        except PermissionDenied:
            actor = user.name if user else "?"
            self._store.audit(actor=actor, action=action, target=target, outcome="denied")
            raise

    @staticmethod
    def _signed_in(user: User | None) -> User:
        if user is None:
            raise PermissionDenied("Sign in first.")
        return user

    def machine(self, snapshot: HardwareSnapshot | None = None) -> Machine:
        snapshot = snapshot or self._hardware.snapshot()
        return Machine.from_snapshot(snapshot, self._ram_bandwidth_gbps)

    # -- admission settings ----------------------------------------------------------------

    def admission_settings(self) -> AdmissionSettings:
        stored = self._store.get_setting(ADMISSION_KEY, None)
        if not isinstance(stored, dict):
            return AdmissionSettings()
        known = {f.name for f in fields(AdmissionSettings)}
        try:
            return AdmissionSettings(**{k: v for k, v in stored.items() if k in known})
        except (TypeError, ValueError):
            return AdmissionSettings()  # a hand-edited database must not lock every load out

    def set_admission_settings(
        self, user: User | None, settings: AdmissionSettings | Mapping[str, object]
    ) -> None:
        """Store new settings (or the raw values a form sent, validated after the role check)."""
        admin = self._admin(user, "change the admission policy", "admission.settings", "")
        if not isinstance(settings, AdmissionSettings):
            settings = AdmissionSettings(**settings)  # type: ignore[arg-type]
        before = self.admission_settings()
        self._store.set_setting(ADMISSION_KEY, asdict(settings))
        self._store.audit(
            actor=admin.name,
            action="admission.settings",
            detail=(
                f"policy {before.policy} -> {settings.policy}; margin "
                f"{before.describe_margin()} -> {settings.describe_margin()}; KV cache "
                f"{before.kv_cache_type} -> {settings.kv_cache_type}"
            ),
        )

    # -- what fits -------------------------------------------------------------------------

    def catalog_view(
        self, user: User | None, num_ctx: int = 4096, kv_cache_type: str = "f16"
    ) -> CatalogView:
        """Every catalog model and quant judged against the free memory now; installed marked."""
        self._signed_in(user)
        machine = self.machine()
        rows = fit_rows(
            self._catalog,
            free_vram_bytes=machine.free_vram_bytes,
            total_vram_bytes=machine.total_vram_bytes,
            free_ram_bytes=machine.free_ram_bytes,
            gpu_bandwidth_gbps=machine.gpu_bandwidth_gbps,
            ram_bandwidth_gbps=machine.ram_bandwidth_gbps,
            num_ctx=int(num_ctx),
            kv_cache_type=kv_cache_type,
        )
        error = ""
        try:
            installed = {_norm(m.name) for m in self._engine().list_models()}
        except EngineError as exc:
            installed, error = set(), str(exc)
        by_tag = {q.tag: (e, q) for e in self._catalog.entries for q in e.quants}
        result = []
        for row in rows:
            entry, option = by_tag[row.tag]
            default = option.quant == entry.default_quant
            here = _norm(row.tag) in installed or (default and _norm(entry.tag) in installed)
            result.append(
                CatalogRow(row, entry.parameter_count, entry.context_length, default, here)
            )
        return CatalogView(tuple(result), int(num_ctx), kv_cache_type, machine, error)

    def installed(self, user: User | None) -> list[InstalledModel]:
        self._signed_in(user)
        return self._engine().list_models()

    def loaded(self, user: User | None) -> list[LoadedModel]:
        self._signed_in(user)
        return self._engine().loaded_models()

    def load_request(self, model: str, num_ctx: int, kv_cache_type: str) -> LoadRequest:
        """The admission input for a model: its catalog entry, else the engine's /api/show."""
        model = model.strip()
        if not model:
            raise ValueError("Name a model first.")
        entry = self._catalog.find(model)
        if entry is not None:
            option = self._catalog.quant_for_tag(model) or entry.quant()
            spec = spec_for(entry, option.quant)
            others = tuple(spec_for(entry, q.quant) for q in entry.quants if q != option)
        else:
            try:
                spec = self._engine().show(model)
            except ModelNotFound as exc:
                raise ModelNotFound(
                    model,
                    f"'{model}' is neither in the catalog nor installed on the engine, so its "
                    "memory cannot be estimated; pull it first.",
                ) from exc
            others = ()
        return LoadRequest(model, spec, int(num_ctx), kv_cache_type, others)

    def _loaded_or_empty(self) -> list[LoadedModel]:
        try:
            return self._engine().loaded_models()
        except EngineError:
            return []

    def check(
        self, user: User | None, model: str, num_ctx: int, kv_cache_type: str | None = None
    ) -> Decision:
        """What admission would say about loading this model now (no reservation); kv_cache_type
        asks "what if the engine ran with this KV cache type"."""
        self._signed_in(user)
        settings = self.admission_settings()
        kv = kv_cache_type or settings.kv_cache_type
        request = self.load_request(model, num_ctx, kv)
        return admission.decide(
            request,
            self.machine(),
            self._loaded_or_empty(),
            self._reservations.held(),
            settings,
        )

    def chat_model_check(self, user: User | None, model: str, num_ctx: int) -> Decision | None:
        """For the chat model picker: None when the model is loaded already or unknowable."""
        self._signed_in(user)
        try:
            loaded = self._engine().loaded_models()
        except EngineError:
            return None
        for m in loaded:
            if _norm(m.name) == _norm(model) and m.context_length in (None, int(num_ctx)):
                return None
        try:
            decision = self.check(user, model, num_ctx)
        except (EngineError, CatalogError, EstimateError):
            return None
        return None if decision.already_loaded else decision

    # -- admin operations -----------------------------------------------------------------

    def pull(
        self, user: User | None, model: str, cancel: threading.Event | None = None
    ) -> Iterator[PullUpdate]:
        """Stream the engine's pull as PullUpdates; cancel (or closing this) stops the download."""
        model = model.strip()
        admin = self._admin(user, f"pull {model or 'models'}", "model.pull", model)
        if not model or any(c.isspace() for c in model):
            raise ValueError(f"'{model}' is not a model tag (e.g. llama3.2:3b).")
        disk = self._hardware.snapshot().disk("models")
        free = disk.free_bytes if disk is not None else None
        option = self._catalog.quant_for_tag(model)
        entry = self._catalog.find(model)
        expected = option.size_bytes if option else (entry.quant().size_bytes if entry else None)
        if free is not None and expected and expected + PULL_DISK_HEADROOM_BYTES > free:
            detail = self._disk_message(model, expected, free, disk.path if disk else None)
            self._store.audit(actor=admin.name, action="model.pull", target=model,
                              outcome="refused", detail=detail)  # fmt: skip
            raise NotEnoughDisk(detail)
        layers: dict[str, LayerProgress] = {}
        needed = 0  # bytes still to download, over the layers seen so far
        window: deque[tuple[float, int]] = deque()
        outcome, detail = "cancelled", "closed by the caller"
        stream = self._engine().pull(model)
        try:
            for item in stream:
                if item.digest and item.total_bytes:
                    done = item.completed_bytes or 0
                    if item.digest not in layers:
                        needed += item.total_bytes - done
                        if free is not None and needed + PULL_DISK_HEADROOM_BYTES > free:
                            path = disk.path if disk else None
                            raise NotEnoughDisk(self._disk_message(model, needed, free, path))
                    layers[item.digest] = LayerProgress(item.digest, item.total_bytes, done)
                total = sum(layer.total_bytes for layer in layers.values())
                completed = sum(layer.completed_bytes for layer in layers.values())
                now = time.monotonic()
                window.append((now, completed))
                while window and now - window[0][0] > SPEED_WINDOW_S:
                    window.popleft()
                span = now - window[0][0]
                speed = (completed - window[0][1]) / span if span > 0.2 else None
                success = item.status == "success"
                yield PullUpdate(model, item.status, tuple(layers.values()), completed, total,
                                 speed, done=success)  # fmt: skip
                if success:
                    outcome, detail = "ok", f"{format_size(total)} in {len(layers)} layer(s)"
                    return
                if cancel is not None and cancel.is_set():
                    detail = f"cancelled at {format_size(completed)} of {format_size(total)}"
                    yield PullUpdate(model, "cancelled", tuple(layers.values()), completed,
                                     total, None, cancelled=True)  # fmt: skip
                    return
            outcome, detail = "failed", "the engine ended the pull without success"
            raise EngineError(f"The pull of {model} ended before it was complete.")
        except (EngineError, NotEnoughDisk) as exc:
            outcome, detail = "failed", str(exc)
            raise
        finally:
            stream.close()  # closing the HTTP stream makes Ollama stop the download
            self._store.audit(actor=admin.name, action="model.pull", target=model,
                              outcome=outcome, detail=detail)  # fmt: skip

    @staticmethod
    def _disk_message(model: str, needed: int, free: int, path: object) -> str:
        return (
            f"Not enough disk space to pull {model}: it needs {format_size(needed)} (plus "
            f"{format_size(PULL_DISK_HEADROOM_BYTES)} headroom) and {format_size(free)} is free "
            f"at {path}."
        )

    def delete(self, user: User | None, model: str) -> None:
        admin = self._admin(user, f"delete {model}", "model.delete", model)
        if not model.strip():
            raise ValueError("Pick a model first.")
        try:
            self._engine().delete(model)
        except EngineError as exc:
            self._store.audit(actor=admin.name, action="model.delete", target=model,
                              outcome="failed", detail=str(exc))  # fmt: skip
            raise
        self._store.audit(actor=admin.name, action="model.delete", target=model)

    def unload(self, user: User | None, model: str) -> None:
        admin = self._admin(user, f"unload {model}", "model.unload", model)
        if not model.strip():
            raise ValueError("Pick a model first.")
        try:
            self._engine().unload(model)
        except EngineError as exc:
            self._store.audit(actor=admin.name, action="model.unload", target=model,
                              outcome="failed", detail=str(exc))  # fmt: skip
            raise
        self._store.audit(actor=admin.name, action="model.unload", target=model)

    def load(
        self, user: User | None, model: str, num_ctx: int, *, override: bool = False
    ) -> LoadResult:
        """Admission check, then the engine's load; override=True loads a refused model anyway."""
        model = model.strip()
        admin = self._admin(user, f"load {model}", "model.load", model)
        settings = self.admission_settings()
        request = self.load_request(model, num_ctx, settings.kv_cache_type)
        loaded = self._loaded_or_empty()
        before: list[HardwareSnapshot] = []

        def decide(reserved: tuple[admission.Reservation, ...]) -> Decision:
            before.append(self._hardware.snapshot())
            return admission.decide(request, self.machine(before[0]), loaded, reserved, settings)

        decision, reservation = self._reservations.admit(model, decide, force=override)
        forced = override and not decision.admitted
        if not decision.admitted and not forced:
            self._store.audit(actor=admin.name, action="model.load", target=model,
                              outcome="refused", detail=_numbers(decision))  # fmt: skip
            raise AdmissionRefused(decision)
        action = "model.load.override" if forced else "model.load"
        try:
            self._engine().load(model, int(num_ctx))
            after = self._hardware.snapshot()
            now_loaded = self._loaded_or_empty()
        except EngineError as exc:
            self._store.audit(actor=admin.name, action=action, target=model, outcome="failed",
                              detail=f"{exc} | {_numbers(decision)}")  # fmt: skip
            raise
        finally:
            self._reservations.release(reservation)
        record = self._record(decision, before[0], after, now_loaded, forced)
        self._store.audit(
            actor=admin.name,
            action=action,
            target=model,
            detail=f"{_numbers(decision)}; actual {self._actual(record)}",
        )
        return LoadResult(decision, record, forced)

    # -- estimate vs actual ----------------------------------------------------------------

    def _record(
        self,
        decision: Decision,
        before: HardwareSnapshot,
        after: HardwareSnapshot,
        loaded: list[LoadedModel],
        forced: bool,
    ) -> LoadRecord:
        mine = next((m for m in loaded if _norm(m.name) == _norm(decision.model)), None)
        record = LoadRecord(
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
        with self._records_lock:
            kept = self._store.get_setting(LOAD_RECORDS_KEY, [])
            kept = [*(kept if isinstance(kept, list) else []), asdict(record)]
            self._store.set_setting(LOAD_RECORDS_KEY, kept[-MAX_LOAD_RECORDS:])
        return record

    @staticmethod
    def _actual(record: LoadRecord) -> str:
        def size(value: int | None) -> str:
            return "unknown" if value is None else format_size(value)

        return (
            f"{size(record.actual_size_bytes)} ({size(record.actual_vram_bytes)} VRAM); "
            f"NVML {size(record.vram_delta_bytes)} VRAM delta, RAM delta "
            f"{format_size(record.ram_delta_bytes)}"
        )

    def load_records(self, limit: int = 10) -> list[LoadRecord]:
        """The last loads' estimate next to the actual numbers, newest first."""
        stored = self._store.get_setting(LOAD_RECORDS_KEY, [])
        names = {f.name for f in fields(LoadRecord)}
        records = []
        for raw in reversed(stored if isinstance(stored, list) else []):
            if isinstance(raw, dict) and names <= set(raw):
                records.append(LoadRecord(**{k: raw[k] for k in names}))
        return records[:limit]
