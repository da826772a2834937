"""ModelService: what fits this machine, and the admin operations pull, load, unload, delete.

Every admin operation checks the acting user and writes the audit log (who, what, which model,
outcome, numbers). A load runs the admission check first, under the reservations lock, and
records the estimate next to what the engine and NVML then report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, fields, replace

from backend.admission import Decision, LoadRequest, Machine, Reservation, Reservations, decide
from backend.admission.settings import AdmissionSettings, LearnedMargin
from backend.auth import PermissionDenied, User, require_admin
from backend.engines.base import (
    Engine,
    EngineError,
    InstalledModel,
    LoadedModel,
    close_stream,
    model_key,
)
from backend.engines.listings import ModelListings
from backend.estimate.catalog import Catalog, CatalogError, fit_rows
from backend.estimate.memory import DEFAULT_RAM_BANDWIDTH_GBPS, EstimateError
from backend.hardware.monitor import HardwareMonitor, HardwareSnapshot
from backend.models_admin import inputs
from backend.models_admin.load_records import (
    ErrorSummary,
    LoadRecord,
    LoadRecords,
    describe_actual,
    record_for,
)
from backend.models_admin.model_spec import resolve_spec
from backend.models_admin.pull_progress import (
    PULL_DISK_HEADROOM_BYTES,
    NotEnoughDisk,
    PullTracker,
    PullUpdate,
    disk_message,
)
from backend.models_admin.values import (
    AdmissionRefused,
    CatalogRow,
    CatalogView,
    LoadResult,
    decision_numbers,
)
from backend.store.database import Store
from backend.units import format_size

ADMISSION_KEY = "admission.settings"


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
        on_load_decision: Callable[[str], None] | None = None,
        listings: ModelListings | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        # The chat path's view of the engine's lists (shared with ChatService, a second old);
        # every admin operation here makes it read afresh.
        self._listings = listings if listings is not None else ModelListings(engine)
        self._hardware = hardware
        self._catalog = catalog
        self._reservations = reservations if reservations is not None else Reservations()
        self._ram_bandwidth_gbps = ram_bandwidth_gbps or DEFAULT_RAM_BANDWIDTH_GBPS
        self._records = LoadRecords(store)
        # Told each load's admission outcome (admit / warn / refuse / override): the metrics.
        self._on_load_decision = on_load_decision or (lambda decision: None)

    # -- helpers ---------------------------------------------------------------------------

    def _admin(self, user: User | None, what: str, action: str, target: str) -> User:
        """require_admin, auditing a refusal."""
        try:
            return require_admin(user, what)
        except PermissionDenied:
            actor = user.name if user else "?"
            self._store.audit(actor=actor, action=action, target=target, outcome="refused")
            raise

    def _admin_named(
        self, user: User | None, verb: str, action: str, model: object, missing: str = ""
    ) -> tuple[User, str]:
        """The admin and the checked model name; a refusal of either is audited."""
        shown = inputs.shown_value(model)
        admin = self._admin(user, f"{verb} {shown or 'models'}", action, shown)
        try:
            return admin, inputs.model_name(model, missing or "Pick a model first.")
        except inputs.ModelInputError as exc:
            self._store.audit(actor=admin.name, action=action, target=shown,
                              outcome="refused", detail=str(exc))  # fmt: skip
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
        values = {k: v for k, v in stored.items() if k in known}
        if values.get("kv_cache_type", "f16") != "f16":
            values.setdefault("flash_attention", True)  # stored before flash attention was a field
        try:
            return AdmissionSettings(**values)
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
                f"{before.describe_margin()} -> {settings.describe_margin()}; engine "
                f"{before.describe_engine()} -> {settings.describe_engine()}"
            ),
        )

    # -- what fits -------------------------------------------------------------------------

    def catalog_view(
        self, user: User | None, num_ctx: int = 4096, kv_cache_type: str = "f16"
    ) -> CatalogView:
        """Every catalog model and quant judged against the free memory now; installed marked."""
        self._signed_in(user)
        num_ctx, kv_cache_type = inputs.num_ctx(num_ctx), inputs.kv_cache_type(kv_cache_type)
        machine = self.machine()
        settings = self.admission_settings()
        fa = settings.flash_attention or kv_cache_type != "f16"
        rows = fit_rows(
            self._catalog,
            free_vram_bytes=machine.free_vram_bytes,
            total_vram_bytes=machine.total_vram_bytes,
            free_ram_bytes=machine.free_ram_bytes,
            gpu_bandwidth_gbps=machine.gpu_bandwidth_gbps,
            ram_bandwidth_gbps=machine.ram_bandwidth_gbps,
            num_ctx=int(num_ctx),
            kv_cache_type=kv_cache_type,
            flash_attention=fa,
            parallel=settings.num_parallel,
        )
        error = ""
        try:
            installed = {model_key(m.name) for m in self._engine().list_models()}
        except EngineError as exc:
            installed, error = set(), str(exc)
        by_tag = {q.tag: (e, q) for e in self._catalog.entries for q in e.quants}
        result = []
        for row in rows:
            entry, option = by_tag[row.tag]
            default = option.quant == entry.default_quant
            here = model_key(row.tag) in installed or (
                default and model_key(entry.tag) in installed
            )
            result.append(
                CatalogRow(row, entry.parameter_count, entry.context_length, default, here)
            )
        view = (tuple(result), int(num_ctx), kv_cache_type, machine, error)
        return CatalogView(*view, settings.num_parallel, fa)

    def installed(self, user: User | None) -> list[InstalledModel]:
        self._signed_in(user)
        return self._engine().list_models()

    def loaded(self, user: User | None) -> list[LoadedModel]:
        self._signed_in(user)
        return self._engine().loaded_models()

    def load_request(
        self,
        model: str,
        num_ctx: int,
        kv_cache_type: str,
        settings: AdmissionSettings | None = None,
    ) -> LoadRequest:
        """Admission input: the installed file's tensors, else the catalog; the engine's slots."""
        settings = settings or self.admission_settings()
        model = inputs.model_name(model, "Name a model first.")
        num_ctx, kv_cache_type = inputs.num_ctx(num_ctx), inputs.kv_cache_type(kv_cache_type)
        spec, others = resolve_spec(model, self._catalog, lambda m: self._engine().show(m))
        fa = settings.flash_attention or kv_cache_type != "f16"
        return LoadRequest(
            model, spec, int(num_ctx), kv_cache_type, others, settings.num_parallel, fa
        )

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
        kv = inputs.kv_cache_type(kv_cache_type) if kv_cache_type else settings.kv_cache_type
        request = self.load_request(model, num_ctx, kv, settings)
        return decide(
            request,
            self.machine(),
            self._loaded_or_empty(),
            self._reservations.held(),
            settings,
            learned=self.learned_margin(),
        )

    def chat_turn_decision(self, user: User | None, model: str, num_ctx: int) -> Decision | None:
        """Admission for a chat turn's load: None when the model is loaded at num_ctx already
        (cheap: no estimate) or its memory cannot be known (engine unreachable, model unknown);
        else the decision at the context the engine would use (capped at the trained one)."""
        self._signed_in(user)
        try:
            loaded = self._listings.loaded()
        except EngineError:
            return None
        for m in loaded:
            if model_key(m.name) == model_key(model) and m.context_length in (None, int(num_ctx)):
                return None
        try:
            return self.check(user, model, num_ctx)
        except (EngineError, CatalogError, EstimateError):
            return None

    def chat_model_check(self, user: User | None, model: str, num_ctx: int) -> Decision | None:
        """For the chat model picker: None when the model is loaded already or unknowable."""
        decision = self.chat_turn_decision(user, model, num_ctx)
        return None if decision is None or decision.already_loaded else decision

    # -- admin operations -----------------------------------------------------------------

    def pull(
        self, user: User | None, model: str, cancel: threading.Event | None = None
    ) -> Iterator[PullUpdate]:
        """Stream the engine's pull as PullUpdates; cancel (or closing this) stops the download.

        The disk is checked twice: on the catalog's size before the pull starts, then on the
        manifest's layer sizes as the engine reports them (PullTracker); either refusal is
        audited as refused, and the second closes the stream, which stops Ollama's download.
        """
        missing = "Name a model tag to pull (e.g. llama3.2:3b)."
        admin, model = self._admin_named(user, "pull", "model.pull", model, missing)
        if any(c.isspace() for c in model):
            raise inputs.ModelInputError(f"{model!r} is not a model tag (e.g. llama3.2:3b).")
        disk = self._hardware.snapshot().disk("models")
        free = disk.free_bytes if disk is not None else None
        path = disk.path if disk is not None else None
        option = self._catalog.quant_for_tag(model)
        entry = self._catalog.find(model)
        expected = option.size_bytes if option else (entry.quant().size_bytes if entry else None)
        if free is not None and expected and expected + PULL_DISK_HEADROOM_BYTES > free:
            detail = disk_message(model, expected, free, path)
            self._store.audit(actor=admin.name, action="model.pull", target=model,
                              outcome="refused", detail=detail)  # fmt: skip
            raise NotEnoughDisk(detail)
        tracker = PullTracker(model, free, path)
        outcome, detail = "cancelled", "closed by the caller"
        stream = self._engine().pull(model)
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
            self._listings.forget()
            self._store.audit(actor=admin.name, action="model.pull", target=model,
                              outcome=outcome, detail=detail)  # fmt: skip

    def delete(self, user: User | None, model: str) -> None:
        admin, name = self._admin_named(user, "delete", "model.delete", model)
        self._audited(admin, "model.delete", name, self._engine().delete)

    def unload(self, user: User | None, model: str) -> None:
        """Unload a loaded model; one the engine does not hold is refused, not reported done."""
        admin, name = self._admin_named(user, "unload", "model.unload", model)
        shown = inputs.shown_value(name)
        if not any(model_key(m.name) == model_key(name) for m in self._engine().loaded_models()):
            detail = f"{inputs.shown_name(name)} is not loaded; there is nothing to unload."
            self._store.audit(actor=admin.name, action="model.unload", target=shown,
                              outcome="refused", detail=detail)  # fmt: skip
            raise inputs.ModelInputError(detail)
        self._audited(admin, "model.unload", name, self._engine().unload)

    def _audited(self, admin: User, action: str, model: str, run: Callable[[str], None]) -> None:
        """Run an engine action on a model and audit how it went."""
        try:
            run(model)
        except EngineError as exc:
            self._store.audit(actor=admin.name, action=action, target=model,
                              outcome="failed", detail=str(exc))  # fmt: skip
            raise
        self._listings.forget()
        self._store.audit(actor=admin.name, action=action, target=model)

    def load(
        self, user: User | None, model: str, num_ctx: int, *, override: bool = False
    ) -> LoadResult:
        """Admission check, then the engine's load; override=True loads a refused model anyway."""
        admin, model = self._admin_named(user, "load", "model.load", model, "Name a model first.")
        num_ctx = inputs.num_ctx(num_ctx)
        settings = self.admission_settings()
        request = self.load_request(model, num_ctx, settings.kv_cache_type, settings)
        loaded = self._loaded_or_empty()
        learned = self.learned_margin(admin)
        before: list[HardwareSnapshot] = []

        def decide_with(reserved: tuple[Reservation, ...]) -> Decision:
            before.append(self._hardware.snapshot())
            machine = self.machine(before[0])
            return decide(request, machine, loaded, reserved, settings, learned=learned)

        decision, reservation = self._reservations.admit(model, decide_with, force=override)
        forced = override and not decision.admitted
        self._on_load_decision("override" if forced else decision.verdict)
        if not decision.admitted and not forced:
            self._store.audit(actor=admin.name, action="model.load", target=model,
                              outcome="refused", detail=decision_numbers(decision))  # fmt: skip
            raise AdmissionRefused(decision)
        action = "model.load.override" if forced else "model.load"
        try:
            self._engine().load(model, int(num_ctx))
            after = self._hardware.snapshot()
            now_loaded = self._loaded_or_empty()
        except EngineError as exc:
            self._store.audit(actor=admin.name, action=action, target=model, outcome="failed",
                              detail=f"{exc} | {decision_numbers(decision)}")  # fmt: skip
            raise
        finally:
            self._reservations.release(reservation)
            self._listings.forget()
        record = record_for(decision, before[0], after, now_loaded, forced, self._host())
        self._records.add(record)
        self.learned_margin(admin)  # audit a margin this load's measurement changes
        self._store.audit(
            actor=admin.name,
            action=action,
            target=model,
            detail=f"{decision_numbers(decision)}; actual {describe_actual(record)}",
        )
        return LoadResult(decision, record, forced)

    def load_records(self, limit: int = 10) -> list[LoadRecord]:
        """The last loads' estimate next to the actual numbers, newest first."""
        return self._records.latest(limit)

    def load_error_summaries(self) -> list[ErrorSummary]:
        """Mean and worst estimate error of the recorded loads, per model and per host."""
        return self._records.error_summaries()

    def _host(self) -> str:  # the engine's address, or its name (embedded)
        return str(getattr(self._engine(), "host", "") or self._engine().name)

    def learned_margin(self, actor: User | None = None) -> LearnedMargin:
        """The margin admission adds on this host after loads ran above their estimate."""
        return self._records.learned_margin(self._host(), actor.name if actor else "system")
