"""Services builds the fair line, limits, usage and the metrics registry from the settings."""

from __future__ import annotations

from prometheus_client import generate_latest

from backend.engines.embedded import EmbeddedEngine
from backend.engines.model_store import ModelStore
from backend.estimate.catalog import load_catalog
from backend.hardware.monitor import HardwareMonitor
from backend.services import CATALOG_PATH, EngineChoice, Services, engine_slots
from backend.settings import Settings
from backend.store.database import Store
from tests.support.fakes import ScriptedEngine


def _services(tmp_path, settings: Settings, engine) -> Services:
    choice = EngineChoice(engine, "test", ModelStore(tmp_path / "models"))
    hardware = HardwareMonitor(tmp_path, tmp_path / "models")
    return Services(settings, Store(tmp_path / "hearth.db"), choice, hardware,
                    load_catalog(CATALOG_PATH))  # fmt: skip


def test_the_line_follows_the_settings_and_gradio_gets_room_for_all_of_it(tmp_path):
    settings = Settings(data_dir=tmp_path, engine_slots=3, per_user_in_flight=2, max_waiting=10)
    services = _services(tmp_path, settings, ScriptedEngine())
    try:
        line = services.line
        assert (line.slots, line.per_user_in_flight, line.max_waiting) == (3, 2, 10)
        assert services.chat_concurrency > line.slots + line.max_waiting
        assert services.chat.line is line
        text = generate_latest(services.metrics_registry).decode()
        assert "hearth_chat_queue_depth 0.0" in text and "# TYPE hearth_chat_requests_total" in text
    finally:
        services.close()


def test_the_embedded_engine_always_gets_one_slot(tmp_path):
    settings = Settings(engine_slots=4, ollama_num_parallel=8)
    assert engine_slots(settings, EmbeddedEngine(tmp_path)) == 1
    assert engine_slots(settings, ScriptedEngine()) == 4
    assert engine_slots(Settings(ollama_num_parallel=8), ScriptedEngine()) == 8


def test_every_chat_event_gets_a_worker_for_each_turn_the_line_can_hold(tmp_path):
    from ui import build_ui

    settings = Settings(data_dir=tmp_path, engine_slots=2, max_waiting=30)
    services = _services(tmp_path, settings, ScriptedEngine())
    try:
        demo = build_ui(services)
        chat_events = [f for f in demo.fns.values() if f.concurrency_id == "engine"]
        names = {f.api_name for f in chat_events}
        assert {"chat", "chat_send", "chat_regenerate", "chat_edit"} <= names
        assert {f.concurrency_limit for f in chat_events} == {services.chat_concurrency}
        assert services.chat_concurrency >= 2 + 30, "waiting happens in the line, not in Gradio"
    finally:
        services.close()
