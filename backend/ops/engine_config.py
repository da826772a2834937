"""Admin → Engines: the list of engines, kept in the settings table, changed live and audited.

A list saved here wins over HEARTH_ENGINES on every later start (an empty list included: it
means the zero-config default, Ollama when it answers, else the embedded engine). API keys stay
server-side: rows carry only whether a key is set, and no audit detail names one. Every value
a form sends is checked here, whatever its type, before parse_spec sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.auth.refusals import cut, require_admin_audited
from backend.auth.types import User
from backend.engines.config import (
    MAX_ENGINES,
    MAX_KEY_CHARS,
    MAX_URL_CHARS,
    EngineSpec,
    engine_specs,
    parse_spec,
    parse_specs,
)
from backend.engines.pool_member import close_member, member_from_spec
from backend.settings import SettingsError
from backend.store.database import Store

log = logging.getLogger(__name__)

ENGINES_KEY = "engines"  # the settings row: a list in HEARTH_ENGINES' form, keys included
FIELD_LIMITS = {"name": 40, "kind": 10, "url": MAX_URL_CHARS, "api_key": MAX_KEY_CHARS,
                "gpu_facts": MAX_URL_CHARS + 10}  # fmt: skip
LABELS = {"name": "Name", "kind": "Kind", "url": "Address", "api_key": "API key",
          "gpu_facts": "GPU facts"}  # fmt: skip


@dataclass(frozen=True)
class EngineRow:
    """One configured engine as the panel lists it: never the key, only whether one is set."""

    name: str
    kind: str
    url: str
    gpu_facts: str  # as written: local, dcgm:<url>, declared:<GiB>, or ""
    api_key_set: bool


@dataclass(frozen=True)
class EngineForm:
    """The panel's fields exactly as they arrived (any type); checked by `spec_from_form`."""

    name: Any = ""
    kind: Any = ""
    url: Any = ""
    api_key: Any = ""  # blank when editing: keep the stored key
    gpu_facts: Any = ""
    clear_key: Any = False  # only True clears


@dataclass(frozen=True)
class Probed:
    """What "test connection" found: whether it answered, and a sentence saying what."""

    ok: bool
    sentence: str


def stored_specs(store: Store) -> tuple[EngineSpec, ...] | None:
    """The list saved in Admin → Engines; None when none was ever saved."""
    stored = store.get_setting(ENGINES_KEY, None)
    if stored is None:
        return None
    if stored == []:
        return ()
    try:
        return parse_specs(stored)
    except SettingsError as exc:
        raise SettingsError(f"The engines saved in Admin → Engines cannot be read: {exc}") from exc


def row(spec: EngineSpec) -> EngineRow:
    return EngineRow(spec.name, spec.kind, spec.url, spec.gpu_facts.text(), bool(spec.api_key))


def text_field(form: EngineForm, field: str) -> str:
    """One field as text: None is empty; anything else that is not short, printable text is
    refused with a sentence naming the field."""
    value = getattr(form, field)
    label, limit = LABELS[field], FIELD_LIMITS[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SettingsError(f"{label} must be text, got {type(value).__name__}.")
    if len(value) > limit:
        raise SettingsError(f"{label} is {len(value):,} characters long; at most {limit:,}.")
    if not value.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise SettingsError(f"{label} holds characters that cannot be used (control characters).")
    return value.strip()


def spec_from_form(form: EngineForm, kept_key: str | None = None) -> EngineSpec:
    """A checked spec; a blank key keeps `kept_key` unless the form clears it."""
    fields = {name: text_field(form, name) for name in LABELS}
    clear = form.clear_key is True
    if clear and fields["api_key"]:
        raise SettingsError("Type a new API key or clear the stored one, not both.")
    key = None if clear else (fields["api_key"] or kept_key)
    entry = {"name": fields["name"], "kind": fields["kind"], "url": fields["url"]}
    if key:
        entry["api_key"] = key
    if fields["gpu_facts"]:
        entry["gpu_facts"] = fields["gpu_facts"]
    return parse_spec(entry, 0, where="This engine")


class EngineConfig:
    """The engines Hearth serves from, for admins; `apply` makes a saved list live."""

    def __init__(
        self,
        store: Store,
        hearth_engines: str | None,
        apply: Callable[[tuple[EngineSpec, ...]], str],
    ) -> None:
        self._store = store
        self._hearth_engines = hearth_engines  # HEARTH_ENGINES' value (checked at start)
        self._apply = apply
        self._lock = threading.Lock()  # one change at a time: read, change, save, apply

    # -- reading ---------------------------------------------------------------------------

    def specs(self) -> tuple[EngineSpec, ...]:
        """The list in force: the saved one, else HEARTH_ENGINES."""
        saved = stored_specs(self._store)
        return self._from_env() if saved is None else saved

    def _from_env(self) -> tuple[EngineSpec, ...]:
        return engine_specs(self._hearth_engines)

    def source(self) -> str:
        if stored_specs(self._store) is not None:
            return "saved in Admin → Engines (it wins over HEARTH_ENGINES)"
        return "from HEARTH_ENGINES" if self._from_env() else "none configured"

    def rows(self, user: User | None) -> list[EngineRow]:
        self._admin(user, "see the configured engines", "engine.list", "")
        return [row(spec) for spec in self.specs()]

    # -- changing --------------------------------------------------------------------------

    def add(self, user: User | None, form: EngineForm) -> str:
        admin = self._admin(user, "add an engine", "engine.add", form.name)
        with self._lock:
            specs = self.specs()
            spec = self._checked(admin, "engine.add", form.name, lambda: spec_from_form(form))
            self._check_room(admin, "engine.add", spec, specs, replacing=None)
            return self._save(admin, "engine.add", spec, (*specs, spec))

    def edit(self, user: User | None, original: Any, form: EngineForm) -> str:
        admin = self._admin(user, "change an engine", "engine.edit", original)
        with self._lock:
            specs = self.specs()
            old = self._find(admin, "engine.edit", original, specs)
            spec = self._checked(
                admin, "engine.edit", original, lambda: spec_from_form(form, old.api_key)
            )
            self._check_room(admin, "engine.edit", spec, specs, replacing=old)
            changed = tuple(spec if s is old else s for s in specs)
            return self._save(admin, "engine.edit", spec, changed, before=old)

    def remove(self, user: User | None, name: Any) -> str:
        admin = self._admin(user, "remove an engine", "engine.remove", name)
        with self._lock:
            specs = self.specs()
            old = self._find(admin, "engine.remove", name, specs)
            return self._save(admin, "engine.remove", old, tuple(s for s in specs if s is not old))

    def test(self, user: User | None, form: EngineForm, original: Any = None) -> Probed:
        """Probe the form's server (with the stored key of `original` when the key is blank)."""
        admin = self._admin(user, "test an engine's connection", "engine.test", form.name)
        kept = None
        if original not in (None, ""):
            kept = self._find(admin, "engine.test", original, self.specs()).api_key
        spec = self._checked(admin, "engine.test", form.name, lambda: spec_from_form(form, kept))
        member = member_from_spec(spec)
        try:
            state = member.probe()
        finally:
            close_member(member)
        self._store.audit(actor=admin.name, action="engine.test", target=spec.name,
                          outcome="ok" if state.up else "failed", detail=spec.url)  # fmt: skip
        if not state.up:
            return Probed(False, f"{spec.url} did not answer as {spec.kind}: {state.detail}")
        names = [m.name for m in state.installed]
        listed = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
        version = f" {state.version}" if state.version else ""
        return Probed(
            True, f"{spec.url} answers ({spec.kind}{version}): {len(names)} model(s) {listed}"
        )

    # -- steps -----------------------------------------------------------------------------

    def _admin(self, user: User | None, what: str, action: str, target: Any) -> User:
        shown = target if isinstance(target, str) else ""
        return require_admin_audited(self._store, user, what, action=action, target=shown)

    def _refuse(self, admin: User, action: str, target: Any, sentence: str) -> SettingsError:
        shown = cut(target.encode("utf-8", "replace").decode()) if isinstance(target, str) else ""
        self._store.audit(actor=admin.name, action=action, target=shown, outcome="refused",
                          detail=cut(sentence))  # fmt: skip
        return SettingsError(sentence)

    def _checked(
        self, admin: User, action: str, target: Any, make: Callable[[], EngineSpec]
    ) -> EngineSpec:
        try:
            return make()
        except SettingsError as exc:
            raise self._refuse(admin, action, target, str(exc)) from None

    def _find(self, admin: User, action: str, name: Any, specs: Sequence[EngineSpec]) -> EngineSpec:
        found = next((s for s in specs if isinstance(name, str) and s.name == name), None)
        if found is None:
            printable = isinstance(name, str) and name.strip() and name.isprintable()
            sentence = (f"There is no engine named {cut(name)!r}." if printable
                        else "Pick one of the configured engines first.")  # fmt: skip
            raise self._refuse(admin, action, name, sentence)
        return found

    def _check_room(
        self,
        admin: User,
        action: str,
        spec: EngineSpec,
        specs: Sequence[EngineSpec],
        replacing: EngineSpec | None,
    ) -> None:
        others = [s for s in specs if s is not replacing]
        if replacing is None and len(others) >= MAX_ENGINES:
            raise self._refuse(admin, action, spec.name, f"At most {MAX_ENGINES} engines.")
        for what, same in (("name", lambda s: s.name == spec.name),
                           ("address", lambda s: s.url == spec.url)):  # fmt: skip
            clash = next((s for s in others if same(s)), None)
            if clash is not None:
                raise self._refuse(
                    admin, action, spec.name, f"Engine {clash.name!r} already has that {what}."
                )

    def _save(
        self,
        admin: User,
        action: str,
        spec: EngineSpec,
        specs: tuple[EngineSpec, ...],
        before: EngineSpec | None = None,
    ) -> str:
        """Store the list, audit the change (never the key), make it live; says what serves."""
        self._store.set_setting(ENGINES_KEY, [s.entry() for s in specs])
        self._store.audit(actor=admin.name, action=action, target=spec.name,
                          detail=_detail(spec, before, action))  # fmt: skip
        try:
            serving = self._apply(specs)
        except Exception as exc:  # saved: it applies on the next start at the latest
            log.exception("applying the engine list failed")
            return f"Saved, but it could not be applied now ({exc}); it applies on the next start."
        return f"Saved. {serving}"


def _detail(spec: EngineSpec, before: EngineSpec | None, action: str) -> str:
    """The audit row's detail: kind, url, GPU facts and whether a key is set; never the key."""
    if action == "engine.remove":
        return f"{spec.kind} at {spec.url}"
    key = "API key set" if spec.api_key else "no API key"
    if before is not None and before.api_key != spec.api_key:
        key += " (changed)" if spec.api_key and before.api_key else ""
        key += " (cleared)" if before.api_key and not spec.api_key else ""
    facts = spec.gpu_facts.text() or "none"
    now = f"{spec.kind} at {spec.url}; GPU facts {facts}; {key}"
    if before is None:
        return now
    return f"was {before.name}: {before.kind} at {before.url}; now {now}"
