"""For tests of a tab's handlers: the app's real Services on a fake NVML, and a stub request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.engines.base import Engine
from backend.engines.embedded import EmbeddedEngine
from backend.engines.model_store import ModelStore
from backend.estimate.catalog import load_catalog
from backend.hardware.monitor import HardwareMonitor
from backend.services import CATALOG_PATH, EngineChoice, Services
from backend.settings import Settings
from backend.store.database import Store
from tests.support.fakes import FakeNvml


@dataclass(frozen=True)
class StubRequest:
    """What handlers read of gr.Request: who is signed in, and which page session."""

    username: str | None
    session_hash: str = "test-session"


def services_on(tmp_path: Path, nvml: FakeNvml, engine: Engine | None = None) -> Services:
    """The app's own Services on a real store in tmp_path; a fake NVML is the only stand-in."""
    store = ModelStore(tmp_path / "models")
    hardware = HardwareMonitor(tmp_path, store, nvml=nvml)
    return Services(
        Settings(data_dir=tmp_path),
        Store(tmp_path / "hearth.db"),
        EngineChoice(engine or EmbeddedEngine(tmp_path / "models"), "chosen by the test", store),
        hardware,
        load_catalog(CATALOG_PATH),
    )
