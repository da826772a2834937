"""Admin → Engines in the backend: validation of any value, the stored list and its keys, the
audit, and the live switch (single engine → pool → back) with per-engine metrics, over a real
SQLite file, real Services and Ollama protocol test servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.auth import CLI, PermissionDenied
from backend.engines.base import ChatMessage, ChatOptions
from backend.engines.embedded import EmbeddedEngine
from backend.engines.model_store import ModelStore
from backend.engines.pool import EnginePool
from backend.estimate.catalog import load_catalog
from backend.hardware.monitor import HardwareMonitor
from backend.ops.engine_config import ENGINES_KEY, EngineConfig, EngineForm, stored_specs
from backend.services import CATALOG_PATH, EngineChoice, Services, choose_engine
from backend.settings import Settings, SettingsError
from backend.store.database import Store
from tests.support.app_process import free_port
from tests.support.hostile import HOSTILE, PYTHON_WORDS
from tests.support.ollama_pool import KillableOllamaServer, scripted_ollama_servers

KEY = "sk-secret-4471"
FIELDS = ("name", "kind", "url", "api_key", "gpu_facts")


@pytest.fixture(scope="module")
def servers() -> Iterator[list[KillableOllamaServer]]:
    with scripted_ollama_servers(2, "w0 w1 w2 w3", 50, ("alpha:1b", "beta:1b")) as started:
        yield started


@pytest.fixture
def root(users):
    return users.add_user(CLI, "root", "root-pass-123", "admin")


@pytest.fixture
def config(store: Store) -> tuple[EngineConfig, list]:
    applied: list = []

    def apply(specs) -> str:
        applied.append(specs)
        return "applied"

    return EngineConfig(store, None, apply), applied


def form(name="a", kind="ollama", url="http://127.0.0.1:9", **more) -> EngineForm:
    return EngineForm(name, kind, url, **more)


def audit_text(store: Store) -> str:
    return repr(store.list_audit(limit=1000))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("label", list(HOSTILE))
def test_any_value_in_any_field_is_a_sentence_or_a_valid_engine(config, store, root, field, label):
    engines, applied = config
    values = {"name": "a", "kind": "ollama", "url": "http://127.0.0.1:9", "api_key": "",
              "gpu_facts": ""} | {field: HOSTILE[label]}  # fmt: skip
    try:
        engines.add(root, EngineForm(**values))
    except SettingsError as exc:
        sentence = str(exc)
        assert sentence and len(sentence) < 300 and not PYTHON_WORDS.search(sentence), sentence
        assert store.get_setting(ENGINES_KEY) is None and applied == []
        assert store.list_audit(action="engine.add")[0].outcome == "refused"
        return
    # Only plain text can make a valid engine (None: an optional field left empty).
    optional = field in ("api_key", "gpu_facts")
    assert isinstance(HOSTILE[label], str) or (HOSTILE[label] is None and optional)
    assert [s.name for s in applied[-1]] == [engines.specs()[0].name]


def test_staff_cannot_list_add_edit_remove_or_test_and_each_refusal_is_audited(
    config, store, alice
):
    engines, applied = config
    calls = [
        lambda: engines.rows(alice),
        lambda: engines.add(alice, form()),
        lambda: engines.edit(alice, "a", form()),
        lambda: engines.remove(alice, "a"),
        lambda: engines.test(alice, form()),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match="Only an admin may"):
            call()
    refused = {e.action for e in store.list_audit(actor="alice", outcome="refused")}
    assert refused == {"engine.list", "engine.add", "engine.edit", "engine.remove", "engine.test"}
    assert store.get_setting(ENGINES_KEY) is None and applied == []


def test_a_blank_key_keeps_the_stored_one_and_clear_removes_it(config, store, root):
    engines, applied = config
    engines.add(root, form(api_key=KEY))
    assert engines.specs()[0].api_key == KEY and engines.rows(root)[0].api_key_set
    engines.edit(root, "a", form(name="a2", api_key="", gpu_facts="declared:24"))
    kept = engines.specs()[0]
    assert (kept.name, kept.api_key, kept.gpu_facts.text()) == ("a2", KEY, "declared:24")
    with pytest.raises(SettingsError, match="not both"):
        engines.edit(root, "a2", form(name="a2", api_key="other", clear_key=True))
    engines.edit(root, "a2", form(name="a2", clear_key=True))
    assert engines.specs()[0].api_key is None and not engines.rows(root)[0].api_key_set
    assert KEY not in repr(engines.rows(root)) and KEY not in audit_text(store)
    details = [e.detail for e in store.list_audit(action="engine.edit", outcome="ok")]
    assert "(cleared)" in details[0] and "API key set" in details[1]
    assert [len(specs) for specs in applied] == [1, 1, 1]


def test_names_and_addresses_are_unique_and_missing_engines_are_named(config, store, root):
    engines, _ = config
    engines.add(root, form())
    engines.add(root, form(name="b", url="http://127.0.0.1:10"))
    with pytest.raises(SettingsError, match="'a' already has that name"):
        engines.add(root, form(url="http://127.0.0.1:11"))
    with pytest.raises(SettingsError, match="'a' already has that address"):
        engines.edit(root, "b", form(name="b"))
    with pytest.raises(SettingsError, match="no engine named 'zz'"):
        engines.remove(root, "zz")
    with pytest.raises(SettingsError, match="Pick one of the configured engines"):
        engines.remove(root, ["a"])
    assert [s.name for s in engines.specs()] == ["a", "b"]


def test_the_saved_list_wins_over_hearth_engines_and_empty_means_the_default(
    store, root, tmp_path: Path
):
    env = json.dumps([{"name": "env", "kind": "ollama", "url": "http://127.0.0.1:7"}])
    settings = Settings(data_dir=tmp_path, engines=env, ollama_host=f"127.0.0.1:{free_port()}")
    engines = EngineConfig(store, env, lambda specs: "applied")
    assert stored_specs(store) is None and [s.name for s in engines.specs()] == ["env"]
    assert "HEARTH_ENGINES" in engines.source()
    engines.add(root, form(name="mine", url="http://127.0.0.1:8"))
    assert [s.name for s in engines.specs()] == ["env", "mine"], "the first change copies env"
    engines.remove(root, "env")
    engines.remove(root, "mine")
    assert stored_specs(store) == () and engines.specs() == ()
    assert "Admin → Engines" in engines.source()
    chosen = choose_engine(settings, stored_specs(store))
    assert isinstance(chosen.engine, EmbeddedEngine), "an empty saved list: the default"
    chosen = choose_engine(settings, None)
    assert isinstance(chosen.engine, EnginePool), "never saved: HEARTH_ENGINES"
    chosen.engine.close()


def test_test_connection_says_whether_the_server_answers(config, root, servers):
    engines, _ = config
    answered = engines.test(root, form(url=servers[1].url))
    assert answered.ok and "beta:1b" in answered.sentence
    silent = engines.test(root, form(url=f"http://127.0.0.1:{free_port()}"))
    assert not silent.ok and "did not answer" in silent.sentence
    assert engines.specs() == ()


# -- the live switch, through real Services ------------------------------------------------


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path, engine="auto", ollama_host=f"127.0.0.1:{free_port()}")
    embedded = EmbeddedEngine(tmp_path / "models")
    choice = EngineChoice(embedded, "no Ollama answered", ModelStore(tmp_path / "models"))
    hardware = HardwareMonitor(tmp_path, tmp_path / "models")
    store = Store(tmp_path / "hearth.db")
    built = Services(settings, store, choice, hardware, load_catalog(CATALOG_PATH))
    built.start()
    yield built
    built.close()


def scrape(services: Services) -> dict[tuple[str, str], float]:
    text = services.metrics_exposition()[0].decode()
    return {
        (sample.name, sample.labels.get("engine", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("hearth_engine_")
    }


def test_saving_switches_a_single_engine_to_a_pool_and_back(services, servers):
    admin = services.users.add_user(CLI, "root", "root-pass-123", "admin")
    embedded = services.engine
    assert services.engine_cards() is None and services.line.slots == 1
    assert scrape(services)[("hearth_engine_up", "embedded")] == 1

    services.engines.add(admin, form(name="a", url=servers[0].url))
    pool = services.engine
    assert isinstance(pool, EnginePool) and pool.fallback is embedded
    assert "Admin → Engines" in services.engine_reason
    assert services.hardware.model_store.path != services.settings.models_path, "Ollama's store"
    services.engines.add(admin, form(name="b", url=servers[1].url))
    assert services.engine is pool, "a pool follows the list in place"
    assert [c.name for c in services.engine_cards() or []] == ["a", "b"]
    assert services.line.slots == 2 and services.engines_up() == (2, 2)
    assert {m.name for m in services.installed_models(admin)} >= {"alpha:1b", "beta:1b"}

    stream = pool.chat("beta:1b", [ChatMessage("user", "Count.")], ChatOptions(num_ctx=2048))
    next(stream)
    metrics = scrape(services)
    assert metrics[("hearth_engine_up", "a")] == metrics[("hearth_engine_up", "b")] == 1
    assert metrics[("hearth_engine_chats_in_flight", "b")] == 1
    assert metrics[("hearth_engine_chats_in_flight", "a")] == 0
    assert ("hearth_engine_up", "fallback:embedded") in metrics
    list(stream)
    assert scrape(services)[("hearth_engine_chats_in_flight", "b")] == 0

    services.engines.remove(admin, "a")
    services.engines.remove(admin, "b")
    assert services.engine is embedded and services.engine_cards() is None
    assert services.hardware.model_store.path == services.settings.models_path
    assert all(m.closed for m in pool.members) and pool.probers.names() == []
    assert services.line.slots == 1
    assert set(scrape(services)) == {("hearth_engine_up", "embedded"),
                                     ("hearth_engine_chats_in_flight", "embedded")}  # fmt: skip
    actions = [(e.action, e.target) for e in services.store.list_audit(outcome="ok", limit=20)]
    assert [a for a in actions if a[0].startswith("engine.")] == [
        ("engine.remove", "b"),
        ("engine.remove", "a"),
        ("engine.add", "b"),
        ("engine.add", "a"),
    ]
