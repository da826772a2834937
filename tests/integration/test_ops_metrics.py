"""The metrics Services registers, read back through Prometheus' own text parser: model loads
by admission decision (real ModelService over the Ollama protocol test server), and GPU memory
from the hardware sampler's newest sample (NVML, the faked boundary, is not read for a scrape).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.admission.settings import AdmissionSettings
from backend.auth import CLI, User, UserAdmin
from backend.engines.model_store import ModelStore
from backend.engines.ollama import OllamaEngine
from backend.estimate.catalog import load_catalog
from backend.hardware.monitor import HardwareMonitor
from backend.models_admin import AdmissionRefused
from backend.services import CATALOG_PATH, EngineChoice, Services
from backend.settings import Settings
from backend.store.database import Store
from tests.support.fakes import FakeGpu, FakeNvml
from tests.support.ollama_server import BUNDLED_NAME

GIB = 1024**3


def crowded_gpus() -> FakeNvml:
    """Two 8 GiB cards, nearly full and full: a 135M model does not fit on the GPUs whole."""
    nearly_full = FakeGpu(total_bytes=8 * GIB, used_bytes=int(7.9 * GIB))
    full = FakeGpu(uuid="GPU-0001", total_bytes=8 * GIB, used_bytes=8 * GIB)
    return FakeNvml([nearly_full, full])


def build(store: Store, engine: OllamaEngine, tmp_path: Path, nvml: FakeNvml) -> Services:
    hardware = HardwareMonitor(tmp_path, tmp_path / "models", nvml=nvml)
    choice = EngineChoice(engine, "test", ModelStore(tmp_path / "models"))
    return Services(
        Settings(data_dir=tmp_path), store, choice, hardware, load_catalog(CATALOG_PATH)
    )


@pytest.fixture
def nvml() -> FakeNvml:
    return crowded_gpus()


@pytest.fixture
def services(store, ollama_engine, tmp_path, nvml) -> Iterator[Services]:
    built = build(store, ollama_engine, tmp_path, nvml)
    yield built
    built.hardware.close()


@pytest.fixture
def admin(users: UserAdmin) -> User:
    return users.add_user(CLI, "root", "root-pass-123", "admin")


def scrape(services: Services) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = services.metrics_exposition()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def loads(services: Services) -> dict[str, float]:
    found = scrape(services)
    decisions = ("admit", "warn", "refuse", "override")
    return {d: found[("hearth_model_loads_total", (("decision", d),))] for d in decisions}


def test_each_model_load_is_counted_by_its_admission_decision(services, admin, ollama_server):
    models = services.models
    assert loads(services) == {"admit": 0, "warn": 0, "refuse": 0, "override": 0}

    models.set_admission_settings(admin, AdmissionSettings("strict", margin=256))
    with pytest.raises(AdmissionRefused):
        models.load(admin, BUNDLED_NAME, 2048)
    assert models.load(admin, BUNDLED_NAME, 2048, override=True).overridden
    models.unload(admin, BUNDLED_NAME)
    models.set_admission_settings(admin, AdmissionSettings("balanced", margin=256))
    assert models.load(admin, BUNDLED_NAME, 2048).decision.verdict == "warn"
    models.unload(admin, BUNDLED_NAME)
    models.set_admission_settings(admin, AdmissionSettings("off"))
    assert models.load(admin, BUNDLED_NAME, 2048).decision.verdict == "admit"

    assert loads(services) == {"admit": 1, "warn": 1, "refuse": 1, "override": 1}


def test_gpu_memory_comes_from_the_sampler_and_a_scrape_reads_no_nvml(services, nvml):
    before = scrape(services)
    assert not [key for key in before if key[0].startswith("hearth_gpu_memory")], "no sample yet"

    services.hardware.sample_now()
    reads = nvml.memory_calls
    found = scrape(services)
    scrape(services)
    assert nvml.memory_calls == reads, "a scrape never calls NVML"
    for gpu, used in (("0", int(7.9 * GIB)), ("1", 8 * GIB)):
        labels = (("gpu", gpu),)
        assert found[("hearth_gpu_memory_used_bytes", labels)] == used
        assert found[("hearth_gpu_memory_total_bytes", labels)] == 8 * GIB
        assert found[("hearth_gpu_memory_free_bytes", labels)] == 8 * GIB - used
