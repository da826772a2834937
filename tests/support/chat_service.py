"""A ChatService wired as the app wires it: with the admission check of a real ModelService."""

from __future__ import annotations

from pathlib import Path

from backend.chat.turns import ChatService
from backend.engines.base import Engine
from backend.estimate.catalog import load_catalog
from backend.hardware.monitor import HardwareMonitor
from backend.models_admin import ModelService
from backend.services import CATALOG_PATH
from backend.store.database import Store


def model_service(store: Store, engine: Engine, data_dir: Path) -> ModelService:
    """Admission over this machine's real hardware (NVML where there is a GPU)."""
    hardware = HardwareMonitor(data_dir, data_dir / "models")
    return ModelService(store, lambda: engine, hardware, load_catalog(CATALOG_PATH))


def chat_service(store: Store, engine: Engine, data_dir: Path) -> ChatService:
    return ChatService(store, lambda: engine, model_service(store, engine, data_dir).chat)
