"""Readiness: can this Hearth take a chat turn now? The engine answers, the database takes writes.

/readyz answers 200 with every check ok, else 503 with the same JSON saying which check failed
and why. /healthz only says that the process answers (a liveness probe must not restart Hearth
because Ollama is down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backend.engines.base import Engine
from backend.store.connections import StoreError
from backend.store.maintenance import probe_write

DATABASE_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str  # "engine", "database", "shutdown"
    ok: bool
    detail: str  # what was found: the engine's answer, the write that failed


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if not check.ok)

    def body(self) -> dict[str, object]:
        """The JSON /readyz answers."""
        return {
            "status": "ready" if self.ready else "not ready",
            "failed": list(self.failed),
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


def engine_check(engine: Engine) -> Check:
    try:
        status = engine.status()
    except Exception as exc:  # status() should not raise; a broken engine must not break /readyz
        return Check("engine", False, f"{type(exc).__name__}: {exc}")
    return Check("engine", status.reachable, status.detail)


def database_check(db_path: Path, timeout_s: float = DATABASE_PROBE_TIMEOUT_S) -> Check:
    try:
        probe_write(db_path, timeout_s)
    except StoreError as exc:
        return Check("database", False, str(exc))
    return Check("database", True, "a write was committed")


def shutdown_check(closing: bool) -> Check:
    if closing:
        return Check("shutdown", False, "Hearth is shutting down and takes no new turns")
    return Check("shutdown", True, "taking turns")


class ReadinessProbe:
    """Runs the checks at each request (no cached answer: a probe must see the present)."""

    def __init__(
        self, engine: Callable[[], Engine], db_path: Path, closing: Callable[[], bool]
    ) -> None:
        self._engine = engine
        self._db_path = db_path
        self._closing = closing

    def check(self) -> Readiness:
        return Readiness(
            (
                engine_check(self._engine()),
                database_check(self._db_path),
                shutdown_check(self._closing()),
            )
        )
