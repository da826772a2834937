"""ModelService: what fits this machine, and the admin operations pull, load, unload, delete.

Every admin operation checks the acting user and writes the audit log (who, what, which model,
outcome, numbers). A load runs the admission check first, under the reservations lock, and
records the estimate next to what the engine and NVML then report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

from backend.admission import Decision, LoadRequest, Machine, Reservations, decide
from backend.admission.reservations import HeldOn
from backend.admission.settings import AdmissionSettings, LearnedMargin
from backend.auth import PermissionDenied, User, require_admin
from backend.engines.base import (
    Engine,
    EngineError,
    InstalledModel,
    LoadedModel,
    model_key,
)
from backend.engines.listings import ModelListings
from backend.estimate.catalog import Catalog
from backend.estimate.memory import DEFAULT_RAM_BANDWIDTH_GBPS
from backend.hardware.monitor import HardwareMonitor, HardwareSnapshot
from backend.models_admin import inputs
from backend.models_admin.admission_store import read_settings, write_settings
from backend.models_admin.catalog_view import catalog_rows
from backend.models_admin.chat_admission import ChatAdmission
from backend.models_admin.hosts import Host, Hosts
from backend.models_admin.load_records import (
    ErrorSummary,
    LoadRecord,
    LoadRecords,
    describe_actual,
    record_for,
)
from backend.models_admin.model_spec import resolve_spec
from backend.models_admin.pool_admission import PoolAdmission
from backend.models_admin.pull_progress import PullUpdate
from backend.models_admin.pulling import audited_pull
from backend.models_admin.values import AdmissionRefused, CatalogView, LoadResult, decision_numbers
from backend.store.database import Store


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
        self.hosts = Hosts(engine, hardware, self._ram_bandwidth_gbps)
        self._pool = PoolAdmission(self.hosts, self._records)
        # The chat side: a turn's admission decision, and where a pool chat's load goes.
        self.chat = ChatAdmission(self, engine, self._listings, self.hosts)
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
        """This machine (local NVML), as admission reads it."""
        return self.hosts.local_machine(snapshot)

    # -- admission settings ----------------------------------------------------------------

    def admission_settings(self) -> AdmissionSettings:
        return read_settings(self._store)

    def set_admission_settings(
        self, user: User | None, settings: AdmissionSettings | Mapping[str, object]
    ) -> None:
        """Store new settings (or the raw values a form sent, validated after the role check)."""
        admin = self._admin(user, "change the admission policy", "admission.settings", "")
        write_settings(self._store, admin.name, settings)
        self.chat.forget()  # decisions made under the old policy

    # -- what fits -------------------------------------------------------------------------

    def catalog_view(
        self,
        user: User | None,
        num_ctx: int = 4096,
        kv_cache_type: str = "f16",
        host: object = None,
    ) -> CatalogView:
        """Every catalog model and quant judged against one host's free memory now (a pool's
        engine by name; None: the roomiest), with that host's installed models marked."""
        self._signed_in(user)
        num_ctx, kv_cache_type = inputs.num_ctx(num_ctx), inputs.kv_cache_type(kv_cache_type)
        target = self._catalog_host(host)
        machine = target.machine if target is not None else self.machine()
        settings = self.admission_settings()
        error = ""
        if target is not None:
            installed = {model_key(name) for name in target.installed}
        else:
            try:
                installed = {model_key(m.name) for m in self._engine().list_models()}
            except EngineError as exc:
                installed, error = set(), str(exc)
        rows = catalog_rows(self._catalog, machine, settings, num_ctx, kv_cache_type, installed)
        fa = settings.flash_attention or kv_cache_type != "f16"
        return CatalogView(
            rows, int(num_ctx), kv_cache_type, machine, error, settings.num_parallel, fa,
            target.name if target is not None else "", tuple(self.hosts.names()),
        )  # fmt: skip

    def _catalog_host(self, host: object) -> Host | None:
        """The host a catalog is judged on: None on a single engine (a named one is refused)."""
        if host is None or host == "":
            return self.hosts.roomiest()
        return self.hosts.named(host)

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
        spec, others = resolve_spec(model, self._catalog, self._listings.spec)
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
        self,
        user: User | None,
        model: str,
        num_ctx: int,
        kv_cache_type: str | None = None,
        host: object = None,
    ) -> Decision:
        """What admission would say about loading this model now (no reservation); kv_cache_type
        asks "what if the engine ran with this KV cache type". On a pool: on the named engine's
        host, or (host None) on the host placement would choose."""
        self._signed_in(user)
        named = None if host is None or host == "" else self.hosts.named(host)
        settings = self.admission_settings()
        kv = inputs.kv_cache_type(kv_cache_type) if kv_cache_type else settings.kv_cache_type
        request = self.load_request(model, num_ctx, kv, settings)
        if self.hosts.pool() is None:
            return decide(
                request,
                self.machine(),
                self._loaded_or_empty(),
                self._reservations.held(""),
                settings,
                learned=self.learned_margin(),
            )
        return self._pool.preview(request, named, self._reservations.held, settings)

    def _forget(self) -> None:
        """The engine's lists and the chat turns' decisions are read afresh (models changed)."""
        self._listings.forget()
        self.chat.forget()

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
        engine = self._engine()
        try:
            yield from audited_pull(
                self._store, admin.name, model, engine, disk, self._catalog, cancel
            )
        finally:
            self._forget()

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
            self._forget()  # a failed delete or unload may have done part of it
            self._store.audit(actor=admin.name, action=action, target=model,
                              outcome="failed", detail=str(exc))  # fmt: skip
            raise
        self._forget()
        self._store.audit(actor=admin.name, action=action, target=model)

    def load(
        self, user: User | None, model: str, num_ctx: int, *, override: bool = False
    ) -> LoadResult:
        """Admission check, then the engine's load; override=True loads a refused model anyway.
        On a pool, admission judges every engine that can load it and placement picks one."""
        admin, model = self._admin_named(user, "load", "model.load", model, "Name a model first.")
        num_ctx = inputs.num_ctx(num_ctx)
        settings = self.admission_settings()
        request = self.load_request(model, num_ctx, settings.kv_cache_type, settings)
        before: list[HardwareSnapshot] = []
        chosen: list[Host] = []
        choose_host = self._chooser(request, settings, admin, override, before, chosen)
        _, decision, reservation = self._reservations.admit_on(model, choose_host, force=override)
        forced = override and not decision.admitted
        self._on_load_decision("override" if forced else decision.verdict)
        if not decision.admitted and not forced:
            self._store.audit(actor=admin.name, action="model.load", target=model,
                              outcome="refused", detail=decision_numbers(decision))  # fmt: skip
            raise AdmissionRefused(decision)
        action = "model.load.override" if forced else "model.load"
        target = chosen[0] if chosen else None
        try:
            now_loaded = self._load_on(target, model, int(num_ctx))
            after = self._hardware.snapshot()
        except EngineError as exc:
            self._store.audit(actor=admin.name, action=action, target=model, outcome="failed",
                              detail=f"{exc} | {decision_numbers(decision)}")  # fmt: skip
            raise
        finally:
            self._reservations.release(reservation)
            self._forget()
        host = target.url if target is not None else self._host()
        here = target is None or target.local
        record = record_for(decision, before[0], after, now_loaded, forced, host, here)
        self._records.add(record)
        self._records.learned_margin(host, admin.name)  # audit a margin this load changes
        self._store.audit(
            actor=admin.name,
            action=action,
            target=model,
            detail=f"{decision_numbers(decision)}; actual {describe_actual(record)}",
        )
        return LoadResult(decision, record, forced)

    def _chooser(
        self,
        request: LoadRequest,
        settings: AdmissionSettings,
        admin: User,
        force: bool,
        before: list[HardwareSnapshot],
        chosen: list[Host],
    ) -> Callable[[HeldOn], tuple[str, Decision]]:
        """The decision run under the reservations lock: on this engine, or on every engine of
        the pool that can load the model and then placement's pick (noted in `chosen`)."""
        if self.hosts.pool() is None:
            loaded = self._loaded_or_empty()
            learned = self.learned_margin(admin)

            def single(held_on: HeldOn) -> tuple[str, Decision]:
                before.append(self._hardware.snapshot())
                machine = self.machine(before[0])
                return "", decide(request, machine, loaded, held_on(""), settings, learned=learned)

            return single

        placement = self._pool.chooser(request, settings, admin.name, force, chosen)

        def pooled(held_on: HeldOn) -> tuple[str, Decision]:
            before.append(self._hardware.snapshot())
            return placement(held_on)

        return pooled

    def _load_on(self, target: Host | None, model: str, num_ctx: int) -> list[LoadedModel]:
        """Load on the single engine, or on the pool engine placement chose; what is loaded
        there after."""
        if target is None:
            self._engine().load(model, num_ctx)
            return self._loaded_or_empty()
        return self._pool.load_on(target, model, num_ctx)

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
