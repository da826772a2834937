"""What admission says of a chat turn's load, and where a pool chat's load goes.

A chat turn for a model that is not loaded at its context makes the engine load it, so the
turn asks admission first. The answer is shared by the turns of one second for one model and
context (SharedReads): a burst of staff costs one estimate and one /api/show, not one each.
The model service makes it read afresh after every pull, load, unload, delete or policy change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from backend.admission import Decision
from backend.auth import SYSTEM, PermissionDenied, User
from backend.engines.base import Engine, EngineError, model_key
from backend.engines.listings import ModelListings
from backend.estimate.catalog import CatalogError
from backend.estimate.memory import EstimateError
from backend.models_admin import inputs
from backend.models_admin.hosts import Hosts
from backend.shared_reads import SharedReads

if TYPE_CHECKING:
    from backend.models_admin.service import ModelService

TURN_DECISION_TTL_S = 1.0  # how old a chat turn's admission decision may be
UNKNOWABLE = (EngineError, CatalogError, EstimateError, inputs.ModelInputError)


class ChatAdmission:
    """The chat side of admission; `ModelService.chat` (TurnAdmission for the chat service)."""

    def __init__(
        self,
        models: ModelService,
        engine: Callable[[], Engine],
        listings: ModelListings,
        hosts: Hosts,
    ) -> None:
        self._models = models
        self._engine = engine
        self._listings = listings
        self._hosts = hosts
        self._decisions: SharedReads[tuple[str, int, int], Decision | None] = SharedReads(
            TURN_DECISION_TTL_S
        )

    def chat_turn_decision(self, user: User | None, model: str, num_ctx: int) -> Decision | None:
        """Admission for a chat turn's load: None when the model is loaded at num_ctx already
        (cheap: no estimate) or its memory cannot be known (engine unreachable, model unknown);
        else the decision at the context the engine would use (capped at the trained one)."""
        if user is None:
            raise PermissionDenied("Sign in first.")
        try:
            loaded = self._listings.loaded()
        except EngineError:
            return None
        for m in loaded:
            if model_key(m.name) == model_key(model) and m.context_length in (None, int(num_ctx)):
                return None
        if not self._judgeable(model):
            return None
        key = (model_key(model), int(num_ctx), id(self._engine()))
        return self._decisions.get(key, lambda: self._judged(model, num_ctx))

    def chat_model_check(self, user: User | None, model: str, num_ctx: int) -> Decision | None:
        """For the chat model picker: None when the model is loaded already or unknowable."""
        decision = self.chat_turn_decision(user, model, num_ctx)
        return None if decision is None or decision.already_loaded else decision

    def chat_placement(self, model: str, num_ctx: int) -> str | None:
        """The pool engine where a chat's load of `model` goes: where an admin's load would go;
        None off a pool, when no host that could load it has GPU facts, or none admits it."""
        if self._hosts.pool() is None or not self._judgeable(model):
            return None
        decision = self._judged(model, num_ctx)
        return (decision.host or None) if decision is not None and decision.admitted else None

    def forget(self) -> None:
        self._decisions.forget()

    def _judgeable(self, model: str) -> bool:
        """Off a pool, always; on one, when an engine that would load it has GPU facts."""
        pool = self._hosts.pool()
        if pool is None:
            return True
        return any(self._hosts.of(m).known for m in pool.placement_targets(model))

    def _judged(self, model: str, num_ctx: int) -> Decision | None:
        try:
            return self._models.check(SYSTEM, model, num_ctx)
        except UNKNOWABLE:
            return None
