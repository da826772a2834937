"""Settings: one frozen value from CLI flags over HEARTH_* and OLLAMA_HOST environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

EngineChoice = Literal["auto", "ollama", "embedded"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "ollama", "embedded")
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
# The fair line's defaults (backend.chat.fair_line): see README's configuration table.
DEFAULT_PER_USER_IN_FLIGHT = 1
DEFAULT_MAX_WAITING = 64
DEFAULT_MAX_WAITING_PER_USER = 4


class SettingsError(ValueError):
    """A setting has a value the app cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    ollama_host: str = DEFAULT_OLLAMA_HOST
    engine: EngineChoice = "auto"
    data_dir: Path = field(default_factory=lambda: Path("data"))
    model_dir: Path | None = None  # default: <data_dir>/models
    ollama_models: Path | None = None  # where a local Ollama keeps models, if moved (OLLAMA_MODELS)
    sample_interval_s: float = 2.0
    ram_bandwidth_gbps: float | None = None  # None: use a conservative default
    admin_password: str | None = None
    metrics_token: str | None = field(default=None, repr=False)  # bearer token for /metrics
    shutdown_grace_s: float = 10.0  # on SIGTERM: how long replies in flight may still run
    # The fair line in front of the engine. engine_slots None: Ollama's own OLLAMA_NUM_PARALLEL
    # when set, else 1 (Ollama's default); the embedded engine always has 1.
    engine_slots: int | None = None
    ollama_num_parallel: int | None = None
    per_user_in_flight: int = DEFAULT_PER_USER_IN_FLIGHT
    max_waiting: int = DEFAULT_MAX_WAITING
    max_waiting_per_user: int = DEFAULT_MAX_WAITING_PER_USER
    # HEARTH_ENGINES: a JSON list of engines, or the path of a JSON file holding one
    # (backend.engines.config reads it). It may hold API keys: never shown.
    engines: str | None = field(default=None, repr=False)

    @property
    def line_slots(self) -> int:
        """How many turns the engine runs at once, as far as the settings say."""
        return self.engine_slots or self.ollama_num_parallel or 1

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hearth.db"

    def with_overrides(self, **overrides: object) -> Settings:
        """Return a copy with every non-None override applied."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        return _validated(_replaced(self, changes))


# Environment variable -> (setting name, parser). Documented in README's configuration table.
ENV_VARS: dict[str, str] = {
    "HEARTH_HOST": "host",
    "HEARTH_PORT": "port",
    "OLLAMA_HOST": "ollama_host",
    "HEARTH_ENGINE": "engine",
    "HEARTH_DATA_DIR": "data_dir",
    "HEARTH_MODEL_DIR": "model_dir",
    "OLLAMA_MODELS": "ollama_models",
    "HEARTH_SAMPLE_INTERVAL_S": "sample_interval_s",
    "HEARTH_RAM_BANDWIDTH_GBPS": "ram_bandwidth_gbps",
    "HEARTH_ADMIN_PASSWORD": "admin_password",
    "HEARTH_METRICS_TOKEN": "metrics_token",
    "HEARTH_SHUTDOWN_GRACE_S": "shutdown_grace_s",
    "HEARTH_ENGINE_SLOTS": "engine_slots",
    "OLLAMA_NUM_PARALLEL": "ollama_num_parallel",
    "HEARTH_PER_USER_IN_FLIGHT": "per_user_in_flight",
    "HEARTH_MAX_WAITING": "max_waiting",
    "HEARTH_MAX_WAITING_PER_USER": "max_waiting_per_user",
    "HEARTH_ENGINES": "engines",
}
# Whole-number settings and the least value each may take.
_COUNTS: dict[str, int] = {
    "engine_slots": 1,
    "ollama_num_parallel": 1,
    "per_user_in_flight": 1,
    "max_waiting": 0,
    "max_waiting_per_user": 0,
}


def normalise_ollama_host(value: str) -> str:
    """Accept what OLLAMA_HOST accepts ("0.0.0.0", "host:port", a URL) and return a URL."""
    value = value.strip().rstrip("/")
    if not value:
        return DEFAULT_OLLAMA_HOST
    if "://" not in value:
        value = f"http://{value}"
    scheme, rest = value.split("://", 1)
    if ":" not in rest.rsplit("]", 1)[-1]:
        rest = f"{rest}:11434"
    return f"{scheme}://{rest}"


def _parse(name: str, raw: str) -> object:
    if name == "ollama_num_parallel" and raw.strip() == "0":
        return None  # Ollama reads 0 as "choose for me"; the line then assumes 1
    try:
        if name == "port" or name in _COUNTS:
            return int(raw)
        if name in ("sample_interval_s", "ram_bandwidth_gbps", "shutdown_grace_s"):
            return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if name in ("data_dir", "model_dir", "ollama_models"):
        return Path(raw).expanduser()
    if name == "ollama_host":
        return normalise_ollama_host(raw)
    return raw


def _replaced(settings: Settings, changes: Mapping[str, object]) -> Settings:
    """A copy with these fields changed; the values are still unchecked (_validated checks)."""
    unchecked: dict[str, Any] = dict(changes)  # raw CLI/env values: typed only by _validated
    return replace(settings, **unchecked)


def _validated(settings: Settings) -> Settings:
    if settings.engine not in ENGINE_CHOICES:
        raise SettingsError(
            f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {settings.engine!r}"
        )
    if not 0 < settings.port < 65536:
        raise SettingsError(f"port must be between 1 and 65535, got {settings.port}")
    for name, least in _COUNTS.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SettingsError(f"{name} must be a whole number of at least {least}, got {value!r}")
    if settings.sample_interval_s <= 0:
        raise SettingsError(f"sample interval must be positive, got {settings.sample_interval_s} s")
    if not 0 <= settings.shutdown_grace_s <= 3600:
        raise SettingsError(
            f"shutdown grace must be 0 to 3600 s, got {settings.shutdown_grace_s} s"
        )
    return replace(settings, ollama_host=normalise_ollama_host(settings.ollama_host))


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment alone (defaults where a variable is unset or empty)."""
    environ = os.environ if environ is None else environ
    values = {
        name: _parse(name, environ[var])
        for var, name in ENV_VARS.items()
        if environ.get(var, "").strip()
    }
    return _validated(_replaced(Settings(), values))
