"""Settings: one frozen value from CLI flags over HEARTH_* and OLLAMA_HOST environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

EngineChoice = Literal["auto", "ollama", "embedded"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "ollama", "embedded")
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


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
        return _validated(replace(self, **changes))


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
    try:
        if name == "port":
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


def _validated(settings: Settings) -> Settings:
    if settings.engine not in ENGINE_CHOICES:
        raise SettingsError(
            f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {settings.engine!r}"
        )
    if not 0 < settings.port < 65536:
        raise SettingsError(f"port must be between 1 and 65535, got {settings.port}")
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
    return _validated(replace(Settings(), **values))
