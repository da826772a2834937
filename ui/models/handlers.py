"""The Models tab's handlers: services and the caller in, plain values (mostly HTML) out.

Hiding the admin controls from staff is courtesy; the control is that ModelService refuses
anyone but an admin a pull, load, unload or delete (with a `refused` audit row). Form values
arrive as any type a caller sends; they are checked here or in the service, and a bad one is a
sentence naming it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from backend.chat.validation import MIN_NUM_CTX, ChatInputError, installed_model, parse_int
from backend.models_admin import AdmissionRefused, inputs
from backend.services import EngineError
from ui.common import Caller, CancelRegistry, acting_user, inline_markdown
from ui.models.render import (
    ANY_FAMILY,
    ANY_SIZE,
    ROOMIEST,
    SIZES,
    catalog_samples,
    decision_html,
    installed_html,
    loaded_html,
    machine_html,
    pull_html,
    records_html,
)

if TYPE_CHECKING:
    from backend.auth import User
    from backend.services import Services

PULL_UPDATE_EVERY_S = 0.1


class Session(Caller, Protocol):
    """What the pull's Cancel needs of gr.Request besides the user: the page session."""

    @property
    def session_hash(self) -> str | None: ...


def context_length(value: object) -> int:
    """The context a form sent, by the chat's rule (an int, an integral float or a numeric str)."""
    return parse_int("Context length", value, MIN_NUM_CTX, inputs.MAX_NUM_CTX)


def choice(label: str, value: object, offered: list[str], default: str) -> str:
    """One of the offered choices (None or "" means the default), else a sentence naming it."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value in offered:
        return value
    shown = inputs.quote_value(value)
    raise ValueError(f"{label} must be one of the choices offered; got {shown}.")


@dataclass(frozen=True)
class ModelLists:
    """Installed, loaded and the load records; `note` names an engine that could not be asked."""

    installed_html: str
    installed_names: list[str]
    loaded_html: str
    loaded_names: list[str]
    records_html: str
    note: str
    picked: str | None  # the model the Load picker shows (None: nothing installed)


def installed_as(value: object, names: Sequence[str]) -> str | None:
    """The installed name `value` stands for (the engine's spelling: case and ":latest" as it
    resolves names), or None when it is not installed or not a name at all."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return installed_model(value, names)
    except ChatInputError:
        return None


def preselect(names: Sequence[str], wanted: Sequence[object]) -> str | None:
    """What the Load picker shows: the first of `wanted` that is installed, else the first
    installed model, else nothing. `wanted` is only a preference (what the picker showed, a
    pulled tag): a value that is not installed is passed over, never an error."""
    for value in wanted:
        found = installed_as(value, names)
        if found is not None:
            return found
    return names[0] if names else None


@dataclass(frozen=True)
class CatalogPage:
    machine_html: str
    samples: list[list[str]]
    tags: list[str]  # the tag of each sample row, in order


def host_choice(value: object) -> object:
    """The catalog's host as the service takes it: None for the roomiest (the default), else
    the value as sent (the service names a value that is not one of the pool's engines)."""
    return None if value is None or value in ("", ROOMIEST) else value


@dataclass(frozen=True)
class PullStep:
    """One update of a pull: the progress bar's value, and the HTML when it is due on screen."""

    fraction: float | None
    desc: str
    html: str | None  # None: not shown (updates are shown at most every PULL_UPDATE_EVERY_S)


@dataclass(frozen=True)
class LoadOutcome:
    decision_html: str
    refused: bool  # the admission said no; the override button is offered
    notice: str  # plain text


class ModelsHandlers:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.models = services.models
        self.families = [ANY_FAMILY, *services.catalog.families()]
        self.pulls = CancelRegistry()  # each page session's pull in flight

    def lists(self, request: Caller | None, *wanted: object) -> ModelLists:
        """Installed, loaded and records; an engine that is down shows its error, not a crash.
        The Load picker shows the first of `wanted` that is installed (see preselect)."""
        user = acting_user(self.services, request)
        note = ""
        try:
            have, running = self.models.installed(user), self.models.loaded(user)
        except EngineError as exc:
            have, running, note = [], [], f"⚠ {inline_markdown(str(exc))}"
        records = records_html(
            self.models.load_records(),
            self.models.load_error_summaries(),
            self.models.learned_margin(),
        )
        names = [m.name for m in have]
        return ModelLists(installed_html(have), names, loaded_html(running),
                          [m.name for m in running], records, note,
                          preselect(names, wanted))  # fmt: skip

    def tab_load(self, request: Caller | None) -> tuple[bool, ModelLists]:
        """Whether the admin controls are shown, and the lists."""
        user = acting_user(self.services, request)
        return user.is_admin, self.lists(request)

    def hosts(self) -> list[str]:
        """The catalog's host choices: the roomiest, then each engine of the pool ([] without)."""
        names = self.models.hosts.names()
        return [ROOMIEST, *names] if names else []

    def catalog(
        self,
        request: Caller | None,
        num_ctx: Any,
        kv_type: Any,
        family: Any,
        size: Any,
        fits: Any,
        host: Any = None,
    ) -> CatalogPage:
        user = acting_user(self.services, request)
        family = choice("Family", family, self.families, ANY_FAMILY)
        size = choice("Size", size, [ANY_SIZE, *SIZES], ANY_SIZE)
        num_ctx = context_length(num_ctx)
        view = self.models.catalog_view(user, num_ctx, kv_type, host_choice(host))
        samples, shown = catalog_samples(view, family, size, fits is True)
        return CatalogPage(machine_html(view), samples, shown)

    def select(
        self,
        request: Caller | None,
        index: Any,
        shown: Any,
        num_ctx: Any,
        kv_type: Any,
        host: Any = None,
    ) -> tuple[str, str, str | None]:
        """The estimate of the catalog row clicked (on the catalog's host), its tag (for Pull),
        and its installed name when it is installed (for the Load picker), else None."""
        user = acting_user(self.services, request)
        if not isinstance(index, int) or not 0 <= index < len(shown or []):
            raise ValueError("Pick a row of the catalog.")
        tag = shown[index]
        if not isinstance(tag, str):
            raise ValueError("Pick a row of the catalog.")
        kv = inputs.kv_cache_type(kv_type)
        found = self.models.check(user, tag, context_length(num_ctx), kv, host_choice(host))
        where = f"host {found.host}" if found.host else "this machine"
        return decision_html(found, f"{tag} — estimate on {where}"), tag, self._installed(user, tag)

    def _installed(self, user: User, tag: str) -> str | None:
        """`tag`'s installed name, or None (not installed, or the engine cannot say now)."""
        try:
            names = [m.name for m in self.models.installed(user)]
        except EngineError:
            return None
        return installed_as(tag, names)

    def pull(self, request: Session, tag: Any) -> Iterator[PullStep]:
        """The pull's progress; the session's Cancel stops it."""
        user = acting_user(self.services, request)
        session = request.session_hash
        last = 0.0
        with self.pulls.running(session) as cancel:
            for update in self.models.pull(user, tag or "", cancel):
                desc = "" if update.fraction is None else f"{update.status} {update.fraction:.0%}"
                now = time.monotonic()
                due = update.done or update.cancelled or now - last >= PULL_UPDATE_EVERY_S
                if due:
                    last = now
                yield PullStep(update.fraction, desc, pull_html(update) if due else None)

    def cancel_pull(self, request: Session) -> bool:
        """Stop this session's pull; False when it has none in flight."""
        return self.pulls.cancel(request.session_hash)

    def check(self, request: Caller | None, model: Any, num_ctx: Any) -> str:
        user = acting_user(self.services, request)
        return decision_html(self.models.check(user, model or "", context_length(num_ctx)))

    def load(self, request: Caller | None, model: Any, num_ctx: Any, override: bool) -> LoadOutcome:
        user = acting_user(self.services, request)
        shown = inputs.shown_value(model)
        try:
            done = self.models.load(user, model or "", context_length(num_ctx), override=override)
        except AdmissionRefused as exc:
            notice = f"Refused: {shown} would not fit; see the numbers below."
            return LoadOutcome(decision_html(exc.decision), True, notice)
        where = f" on {done.decision.host}" if done.decision.host else ""
        return LoadOutcome(decision_html(done.decision), False, f"{shown} is loaded{where}.")

    def delete_ask(self, request: Caller | None, model: Any) -> str:
        """The confirmation question (markdown) for deleting `model`."""
        acting_user(self.services, request)
        model = inputs.model_name(model, "Pick an installed model first.")
        shown = inline_markdown(inputs.shown_name(model))
        return f"Delete **{shown}** from the engine? Its files are removed."

    def delete(self, request: Caller | None, model: Any) -> str:
        self.models.delete(acting_user(self.services, request), model or "")
        return f"{inputs.shown_value(model)} was deleted."

    def unload(self, request: Caller | None, model: Any) -> str:
        self.models.unload(acting_user(self.services, request), model or "")
        return f"{inputs.shown_value(model)} was unloaded."
