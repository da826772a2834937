"""Engines as configuration: HEARTH_ENGINES (a JSON list, or the path of a JSON file) to specs.

Each entry is `{"name", "kind": "ollama" | "openai", "url", "api_key"?, "gpu_facts"?}`;
`gpu_facts` says where the host's GPU memory is read: "local" (this machine's NVML),
"dcgm:<exporter url>" or "declared:<GiB>". An API key is kept server-side and never shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from backend.settings import SettingsError, normalise_ollama_host

EngineKind = Literal["ollama", "openai"]
ENGINE_KINDS: tuple[EngineKind, ...] = ("ollama", "openai")
MAX_ENGINES = 32
MAX_URL_CHARS = 2048
MAX_KEY_CHARS = 4096
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_KEYS = frozenset({"name", "kind", "url", "api_key", "gpu_facts"})
REDACTED = "••••••"


@dataclass(frozen=True)
class GpuFacts:
    """Where an engine's GPU memory facts come from."""

    source: Literal["local", "dcgm", "declared", "none"] = "none"
    dcgm_url: str = ""
    declared_vram_gib: float | None = None

    def text(self) -> str:
        """The form it is written in (HEARTH_ENGINES, the Engines panel): "" when not set."""
        if self.source == "local":
            return "local"
        if self.source == "dcgm":
            return f"dcgm:{self.dcgm_url}"
        if self.source == "declared":
            return f"declared:{self.declared_vram_gib:g}"
        return ""

    def describe(self) -> str:
        if self.source == "local":
            return "this machine's NVML"
        if self.source == "dcgm":
            return f"DCGM exporter at {self.dcgm_url}"
        if self.source == "declared":
            return f"{self.declared_vram_gib:g} GiB declared by the admin"
        return "not configured"


@dataclass(frozen=True)
class EngineSpec:
    """One configured engine; the API key never appears in repr, cards or logs."""

    name: str
    kind: EngineKind
    url: str
    api_key: str | None = field(default=None, repr=False)
    gpu_facts: GpuFacts = GpuFacts()

    @property
    def shown_key(self) -> str:
        """What a page may show of the key: whether there is one, never the key."""
        return REDACTED if self.api_key else ""

    def entry(self) -> dict[str, str]:
        """The spec as HEARTH_ENGINES writes it (the API key included: for server-side storage)."""
        written = {"name": self.name, "kind": self.kind, "url": self.url}
        if self.api_key:
            written["api_key"] = self.api_key
        if self.gpu_facts.text():
            written["gpu_facts"] = self.gpu_facts.text()
        return written


def engine_specs(raw: str | None) -> tuple[EngineSpec, ...]:
    """Specs from HEARTH_ENGINES' value: a JSON list, or the path of a file holding one.

    () when unset; SettingsError naming the entry and the value otherwise.
    """
    if raw is None or not raw.strip():
        return ()
    text = raw.strip()
    if not text.startswith("["):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"HEARTH_ENGINES is neither a JSON list nor a readable file: {text!r} ({exc})"
            ) from exc
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"HEARTH_ENGINES is not valid JSON: {exc}") from exc
    return parse_specs(entries)


def parse_specs(entries: Any) -> tuple[EngineSpec, ...]:
    if not isinstance(entries, list) or not entries:
        raise SettingsError("HEARTH_ENGINES must be a non-empty JSON list of engines.")
    if len(entries) > MAX_ENGINES:
        raise SettingsError(f"HEARTH_ENGINES lists {len(entries)} engines; at most {MAX_ENGINES}.")
    specs = [parse_spec(entry, index) for index, entry in enumerate(entries, start=1)]
    _check_unique([s.name for s in specs], "name")
    _check_unique([s.url for s in specs], "url")
    return tuple(specs)


def parse_spec(entry: Any, index: int, where: str = "") -> EngineSpec:
    """One engine from its entry; SettingsError naming `where` (default: the HEARTH_ENGINES
    entry by index) and the field."""
    where = where or f"HEARTH_ENGINES entry {index}"
    if not isinstance(entry, dict):
        raise SettingsError(f"{where} must be an object with name, kind and url.")
    unknown = set(entry) - _KEYS
    if unknown:
        raise SettingsError(f"{where} has unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    name, kind, url = entry.get("name"), entry.get("kind"), entry.get("url")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SettingsError(
            f"{where}: name must be 1-40 letters, digits, '.', '_' or '-', got {_shown(name)}"
        )
    if kind not in ENGINE_KINDS:
        raise SettingsError(f"{where} ({name}): kind must be ollama or openai, got {_shown(kind)}")
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_URL_CHARS:
        raise SettingsError(
            f"{where} ({name}): url must be the server's address (at most {MAX_URL_CHARS} "
            "characters)."
        )
    api_key = entry.get("api_key")
    if api_key is not None and (
        not isinstance(api_key, str) or len(api_key) > MAX_KEY_CHARS or not _printable(api_key)
    ):
        raise SettingsError(
            f"{where} ({name}): api_key must be text on one line, at most {MAX_KEY_CHARS} "
            "characters."
        )
    url = normalise_ollama_host(url) if kind == "ollama" else url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"{where} ({name}): url must start with http:// or https://")
    if not _printable(url) or " " in url or not _has_host(url):
        raise SettingsError(f"{where} ({name}): url is not a server address: {url[:80]!r}")
    facts = parse_gpu_facts(entry.get("gpu_facts"), f"{where} ({name})")
    return EngineSpec(name, kind, url, api_key or None, facts)


def parse_gpu_facts(value: Any, where: str) -> GpuFacts:
    """ "local", "dcgm:<url>", "declared:<GiB>" or absent."""
    if value is None or value == "":
        return GpuFacts()
    if not isinstance(value, str):
        raise SettingsError(f"{where}: gpu_facts must be text, got {_shown(value)}")
    if value == "local":
        return GpuFacts("local")
    kind, _, rest = value.partition(":")
    if kind == "dcgm" and rest.startswith(("http://", "https://")) and _has_host(rest):
        return GpuFacts("dcgm", dcgm_url=rest)
    if kind == "declared":
        try:
            gib = float(rest)
        except ValueError:
            gib = -1.0
        if 0 < gib <= 1_000_000:
            return GpuFacts("declared", declared_vram_gib=gib)
    raise SettingsError(
        f"{where}: gpu_facts must be local, dcgm:<http url> or declared:<GiB>, got {_shown(value)}"
    )


def _shown(value: object) -> str:
    """A value in a sentence: its repr, cut short (a form can send a megabyte)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _printable(text: str) -> bool:
    """No control characters, no lone surrogates: text that can travel in a header or a URL."""
    return text.isprintable() and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _has_host(url: str) -> bool:
    if not _printable(url) or " " in url:
        return False
    try:
        return bool(httpx.URL(url).host)
    except (httpx.InvalidURL, ValueError, TypeError):
        return False


def _check_unique(values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise SettingsError(f"HEARTH_ENGINES lists the {what} {value!r} twice.")
        seen.add(value)
