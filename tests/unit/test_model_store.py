"""Where the serving engine's model files live: the disk a pull's free-space check reads."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from backend.engines.model_store import ModelStore, is_this_machine, ollama_model_store
from backend.hardware.monitor import HardwareMonitor
from tests.support.fakes import FakeNvml


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:11434",
        "http://localhost:11434",
        "http://0.0.0.0:11434",
        "http://[::1]:11434",
        "https://127.0.0.2:443",
        f"http://{socket.gethostname()}:11434",
    ],
)
def test_servers_on_this_machine(host: str) -> None:
    assert is_this_machine(host)


@pytest.mark.parametrize(
    "host",
    ["http://192.0.2.10:11434", "http://gpu-box.example.org:11434", "http://[2001:db8::1]:80"],
)
def test_servers_elsewhere(host: str) -> None:
    assert not is_this_machine(host)


def test_a_local_address_of_this_machine_counts_as_local(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    lan = SimpleNamespace(family=socket.AF_INET, address="10.1.2.3")
    loopback = SimpleNamespace(family=socket.AF_INET, address="127.0.0.1")
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"lo": [loopback], "eth0": [lan]})
    assert is_this_machine("http://10.1.2.3:11434")
    assert not is_this_machine("http://10.1.2.4:11434")


def test_ollama_models_setting_wins_for_a_local_server(tmp_path: Path) -> None:
    store = ollama_model_store("http://127.0.0.1:11434", tmp_path / "moved", tmp_path / "none")
    assert store == ModelStore(tmp_path / "moved")


def test_the_linux_service_install_keeps_models_in_the_ollama_users_home(tmp_path: Path) -> None:
    home = tmp_path / "usr-share-ollama"
    home.mkdir()
    store = ollama_model_store("http://localhost:11434", None, home)
    assert store.path == home / ".ollama" / "models"


def test_a_hand_started_server_keeps_them_in_the_users_home(tmp_path: Path) -> None:
    store = ollama_model_store("http://localhost:11434", None, tmp_path / "no-service-user")
    assert store.path == Path.home() / ".ollama" / "models"


def test_a_remote_server_has_no_local_folder_and_says_so(tmp_path: Path) -> None:
    store = ollama_model_store("http://192.0.2.10:11434", tmp_path / "ignored", tmp_path)
    assert store.path is None
    assert "http://192.0.2.10:11434" in store.unknown_reason
    assert "not on this machine" in store.unknown_reason


def test_hardware_shows_a_remote_store_as_not_measured(tmp_path: Path) -> None:
    store = ModelStore(None, "models are kept by the Ollama server at http://192.0.2.10:11434")
    with HardwareMonitor(tmp_path, store, nvml=FakeNvml([])) as monitor:
        disk = monitor.snapshot().disk("models")
    assert disk is not None
    assert disk.path is None and disk.free_bytes is None
    assert "192.0.2.10" in disk.error
