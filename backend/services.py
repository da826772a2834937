"""Services: the one object that owns the engine, store, monitor, catalog and admission."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from backend.auth import ApiKeys, AuditLog, Authentication, User, UserAdmin
from backend.chat.conversations import ConversationService
from backend.chat.fair_line import FairLine
from backend.chat.limits import TurnLimits
from backend.chat.metrics import ChatMetrics
from backend.chat.shutdown import ShutdownGate
from backend.chat.turns import ChatService
from backend.chat.usage import UsageService
from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    Engine,
    EngineError,
    EngineStatus,
    InstalledModel,
    LoadedModel,
)
from backend.engines.config import EngineSpec, engine_specs
from backend.engines.embedded import EmbeddedEngine
from backend.engines.listings import ModelListings
from backend.engines.model_store import ModelStore, ollama_model_store
from backend.engines.pool import EnginePool
from backend.engines.pool_member import EngineCard, member_from_spec
from backend.estimate.catalog import Catalog, FitRow, fit_rows, load_catalog
from backend.estimate.memory import DEFAULT_RAM_BANDWIDTH_GBPS
from backend.hardware.monitor import HardwareMonitor, HardwareSnapshot
from backend.models_admin import ModelService
from backend.ops.engine_config import EngineConfig, EngineForm, EngineRow, stored_specs
from backend.ops.metrics import OpsMetrics, exposition
from backend.ops.readiness import Readiness, ReadinessProbe
from backend.settings import Settings
from backend.store.database import (
    AuditEntry,
    Conversation,
    Message,
    SearchHit,
    Store,
    StoreError,
    UserRecord,
)

# Values the UI shows, re-exported: a tab imports from services, never from the store or engines.
__all__ = [
    "AuditEntry",
    "ChatDelta",
    "ChatMessage",
    "Conversation",
    "EngineCard",
    "EngineConfig",
    "EngineError",
    "EngineForm",
    "EngineRow",
    "EngineStatus",
    "InstalledModel",
    "LoadedModel",
    "Message",
    "Readiness",
    "SearchHit",
    "ServedModel",
    "Services",
    "StoreError",
    "UserRecord",
]

CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "catalog.json"
# Gradio workers for chat events beyond what the fair line holds: room to answer refusals at once.
CHAT_REFUSAL_ROOM = 8


@dataclass(frozen=True)
class ServedModel:
    """A model the API lists: its name, the context it was trained on (None: not known)."""

    name: str
    context_length: int | None
    modified_at: str  # ISO 8601, "" when the engine does not say


@dataclass(frozen=True)
class EngineChoice:
    engine: Engine
    reason: str  # why this engine serves, shown in the page header
    model_store: ModelStore  # where it keeps model files: free disk for pulls and Hardware


def choose_engine(
    settings: Settings,
    saved: tuple[EngineSpec, ...] | None = None,
    embedded: EmbeddedEngine | None = None,
) -> EngineChoice:
    """The engines saved in Admin → Engines (`saved`; None: never saved), else HEARTH_ENGINES,
    as a pool; else Ollama when asked for or when it answers (auto); else the embedded llama.cpp
    engine (`embedded`, when one is already open)."""
    if embedded is None:
        embedded = EmbeddedEngine(settings.models_path)
    embedded_store = ModelStore(settings.models_path)
    if settings.engine == "embedded":
        return EngineChoice(
            embedded, "embedded engine chosen with --engine embedded", embedded_store
        )
    specs = engine_specs(settings.engines) if saved is None else saved
    if specs:
        source = "HEARTH_ENGINES" if saved is None else "Admin → Engines"
        fallback = embedded if settings.engine == "auto" else None
        return pool_choice(settings, specs, fallback, source)
    from backend.engines.ollama import OllamaEngine

    ollama = OllamaEngine(settings.ollama_host)
    ollama_store = ollama_model_store(settings.ollama_host, settings.ollama_models)
    if settings.engine == "ollama":
        reason = f"Ollama at {settings.ollama_host} (--engine ollama)"
        return EngineChoice(ollama, reason, ollama_store)
    status = ollama.status()
    if status.reachable:
        return EngineChoice(ollama, f"Ollama answered at {settings.ollama_host}", ollama_store)
    ollama.close()
    # status.detail repeats the host and the client's advice; the Hardware page shows it.
    return EngineChoice(
        embedded,
        f"Ollama is not reachable at {settings.ollama_host}; using the embedded llama.cpp engine",
        embedded_store,
    )


def pool_choice(
    settings: Settings,
    specs: tuple[EngineSpec, ...],
    fallback: Engine | None,
    source: str = "HEARTH_ENGINES",
) -> EngineChoice:
    """An EnginePool over the configured engines; the embedded engine serves when none is up."""
    pool = EnginePool([member_from_spec(spec) for spec in specs], fallback=fallback)
    reason = pool_reason(specs, fallback is not None, source)
    return EngineChoice(pool, reason, pool_model_store(settings, specs))


def pool_model_store(settings: Settings, specs: tuple[EngineSpec, ...]) -> ModelStore:
    """Where the pool's models are kept on this machine: the first Ollama's store, else the
    embedded engine's directory."""
    local_ollama = next((s for s in specs if s.kind == "ollama"), None)
    if local_ollama is None:
        return ModelStore(settings.models_path)
    return ollama_model_store(local_ollama.url, settings.ollama_models)


def pool_reason(specs: tuple[EngineSpec, ...], has_fallback: bool, source: str) -> str:
    names = ", ".join(f"{s.name} ({s.kind})" for s in specs)
    reason = f"{len(specs)} engine(s) from {source}: {names}"
    return reason + ("; the embedded engine serves when none is up" if has_fallback else "")


def engine_slots(settings: Settings, engine: Engine) -> int:
    """Turns the engine runs at once: 1 for the embedded engine (one Llama, one reply at a
    time), else HEARTH_ENGINE_SLOTS, else Ollama's OLLAMA_NUM_PARALLEL, else 1 (per engine of
    a pool)."""
    if isinstance(engine, EnginePool):
        return settings.line_slots * len(engine.members)
    return 1 if engine.name == "embedded" else settings.line_slots


class Services:
    """Built once in app.py and handed to the UI; tabs reach the backend only through it."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: EngineChoice,
        hardware: HardwareMonitor,
        catalog: Catalog,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine.engine  # swapped live by apply_engines: consumers look it up per use
        self.engine_reason = engine.reason
        self._engine_lock = threading.Lock()
        self._retired: list[Engine] = []  # engines swapped out, closed at shutdown
        self.hardware = hardware
        self.catalog = catalog
        self.auth = Authentication(store)  # sign-in, sessions: the acting User comes from here
        self.users = UserAdmin(store)
        self.audit = AuditLog(store)
        self.api_keys = ApiKeys(store)  # personal keys for the OpenAI-compatible API
        self.conversations = ConversationService(store)
        # One registry for every Hearth metric: /metrics serves it (backend.ops, chat metrics).
        self.metrics_registry = CollectorRegistry()
        self.ops_metrics = OpsMetrics(
            self.metrics_registry, lambda: self.engine, hardware, self._chats_running
        )
        self.listings = ModelListings(lambda: self.engine)  # one engine read per second per list
        self.models = ModelService(
            store,
            lambda: self.engine,
            hardware,
            catalog,
            ram_bandwidth_gbps=settings.ram_bandwidth_gbps,
            on_load_decision=self.ops_metrics.model_load,
            listings=self.listings,
        )
        self._wire_pool(self.engine)
        self.shutdown = ShutdownGate()  # SIGTERM: no new turns, then replies in flight are cut
        self.readiness_probe = ReadinessProbe(
            lambda: self.engine, store.path, lambda: self.shutdown.closed
        )
        self.chat_metrics = ChatMetrics(self.metrics_registry)
        self.line = self._fair_line(settings)
        self.limits = TurnLimits(store, self.users)
        self.usage = UsageService(store, self.users)
        self.chat = ChatService(
            store,
            lambda: self.engine,
            self.models.chat,
            line=self.line,
            limits=self.limits,
            metrics=self.chat_metrics,
            shutdown=self.shutdown,
            listings=self.listings,
        )
        self.engines = EngineConfig(store, settings.engines, self.apply_engines)

    def _fair_line(self, settings: Settings) -> FairLine:
        """The line in front of the engine, sized to its slots, watched by the chat metrics."""
        line = FairLine(
            engine_slots(settings, self.engine),
            settings.per_user_in_flight,
            settings.max_waiting,
            max_waiting_per_user=settings.max_waiting_per_user,
            on_wait=self.chat_metrics.observe_wait,
        )
        self.chat_metrics.watch(line.stats)
        return line

    def _chats_running(self) -> int:
        """A single engine's chats in flight: the turns holding a slot in the line."""
        return self.line.stats().running

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.db_path)
        engine = choose_engine(settings, stored_specs(store))
        hardware = HardwareMonitor(
            settings.data_dir, engine.model_store, interval_s=settings.sample_interval_s
        )
        return cls(settings, store, engine, hardware, load_catalog(CATALOG_PATH))

    @property
    def chat_concurrency(self) -> int:
        """Gradio workers for chat turns: every turn the fair line may hold, and room to refuse.

        Waiting happens in the fair line, where positions are known, not in Gradio's queue.
        """
        return self.line.slots + self.line.max_waiting + CHAT_REFUSAL_ROOM

    def start(self) -> None:
        """Start background work (the hardware sampler; the pool's engine probers)."""
        self.hardware.start()
        if isinstance(self.engine, EnginePool):
            self.engine.start()

    def close(self) -> None:
        self.hardware.close()
        for engine in {id(e): e for e in (*self._retired, self.engine)}.values():
            close_engine = getattr(engine, "close", None)
            if close_engine is not None:
                close_engine()
        self.store.close()

    def apply_engines(self, specs: tuple[EngineSpec, ...]) -> str:
        """Serve from `specs` now, without a restart; says what serves.

        A pool follows the new list (EnginePool.reconfigure); a single engine becomes a pool
        (the embedded engine its fallback under --engine auto); an empty list goes back to the
        zero-config default. Chats in flight on an engine left out finish first."""
        if self.settings.engine == "embedded":
            return "Hearth runs with --engine embedded: the list applies on a start without it."
        with self._engine_lock:
            current = self.engine
            if specs and isinstance(current, EnginePool):
                current.reconfigure(specs)
                has_fallback = current.fallback is not None
                self.engine_reason = pool_reason(specs, has_fallback, "Admin → Engines")
                self.hardware.model_store = pool_model_store(self.settings, specs)
            else:
                self._switch(current, specs)
            self.line.resize(engine_slots(self.settings, self.engine))
            return f"Now serving: {self.engine_reason}."

    def _switch(self, current: Engine, specs: tuple[EngineSpec, ...]) -> None:
        """A new engine in place of `current`, reusing an open embedded engine. `current` is
        closed at shutdown; a pool's members close as soon as their chats in flight end."""
        kept = current.fallback if isinstance(current, EnginePool) else current
        embedded = kept if isinstance(kept, EmbeddedEngine) else None
        choice = choose_engine(self.settings, specs, embedded)
        if isinstance(choice.engine, EnginePool):
            self._wire_pool(choice.engine)
            choice.engine.start()
        self.engine, self.engine_reason = choice.engine, choice.reason
        self.hardware.model_store = choice.model_store  # free disk for pulls, Hardware
        if isinstance(current, EnginePool):
            current.retire(keep_fallback=True)  # its fallback may serve on, or chat now
        self._retired.append(current)

    def _wire_pool(self, engine: Engine) -> None:
        """A pool's chat for a model nobody has loaded goes where an admin's load would."""
        if isinstance(engine, EnginePool):
            engine.placement_hint = self.models.chat.chat_placement

    # -- operator endpoints (no user: served before Gradio's login) -------------------------

    def readiness(self) -> Readiness:
        """Engine reachable, database writable, not shutting down: what /readyz reports."""
        return self.readiness_probe.check()

    def metrics_exposition(self) -> tuple[bytes, str]:
        """Every registered metric in Prometheus' text format, and its content type."""
        return exposition(self.metrics_registry)

    # -- engine facts for any signed-in user -----------------------------------------------

    def engine_status(self) -> EngineStatus:
        return self.engine.status()

    def engine_cards(self) -> list[EngineCard] | None:
        """One card per configured engine; None when Hearth runs on a single engine."""
        return self.engine.cards() if isinstance(self.engine, EnginePool) else None

    def engines_up(self) -> tuple[int, int] | None:
        """(engines up, engines configured); None on a single engine."""
        if not isinstance(self.engine, EnginePool):
            return None
        return len(self.engine.up_members()), len(self.engine.members)

    def installed_models(self, user: User | None) -> list[InstalledModel]:
        if user is None:
            return []
        try:
            return self.engine.list_models()
        except EngineError:
            return []

    def served_models(self, user: User) -> list[ServedModel]:
        """The engine's models with their trained context; EngineError when it is down."""
        served = []
        for model in self.engine.list_models():
            try:
                context: int | None = self.engine.show(model.name).context_length
            except EngineError:
                context = None
            served.append(ServedModel(model.name, context, model.modified_at))
        return served

    def loaded_models(self) -> list[LoadedModel]:
        try:
            return self.engine.loaded_models()
        except EngineError:
            return []

    # -- what this machine can run -----------------------------------------------------------

    @property
    def ram_bandwidth_gbps(self) -> float:
        return self.settings.ram_bandwidth_gbps or DEFAULT_RAM_BANDWIDTH_GBPS

    def machine_fits(
        self,
        snapshot: HardwareSnapshot,
        *,
        num_ctx: int = 4096,
        kv_cache_type: str = "f16",
        tags: Collection[str] | None = None,
    ) -> list[FitRow]:
        """Catalog rows (all, or the given base tags) judged against this snapshot's free memory."""
        engine = self.models.admission_settings()  # slots and flash attention as the engine runs
        return fit_rows(
            self.catalog if tags is None else self.catalog.subset(tags),
            free_vram_bytes=snapshot.free_vram_bytes,
            total_vram_bytes=snapshot.total_vram_bytes,
            free_ram_bytes=snapshot.memory.available_bytes,
            gpu_bandwidth_gbps=snapshot.gpu_bandwidth_gbps,
            ram_bandwidth_gbps=self.ram_bandwidth_gbps,
            num_ctx=num_ctx,
            kv_cache_type=kv_cache_type,
            flash_attention=engine.flash_attention or kv_cache_type != "f16",
            parallel=engine.num_parallel,
        )
