"""/healthz, /readyz and /metrics over HTTP on the real app (`python app.py`), without a login;
and `app.py restore` refused while that app runs.

Two apps: a healthy one on the embedded engine, and one on Ollama at a port where nothing
listens, with HEARTH_METRICS_TOKEN set.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.support.app_process import ROOT, AppProcess, free_port

TOKEN = "scrape-token-7f3a"
OPS_FAMILIES = {
    "hearth_engine_up": "gauge",
    "hearth_engine_chats_in_flight": "gauge",
    "hearth_model_loads": "counter",
    "hearth_gpu_memory_used_bytes": "gauge",
    "hearth_gpu_memory_free_bytes": "gauge",
    "hearth_gpu_memory_total_bytes": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
}


def get(url: str, path: str, **headers: str) -> httpx.Response:
    """A request with no session cookie (what a load balancer or Prometheus sends)."""
    return httpx.get(url + path, headers=headers, timeout=30, trust_env=False)


def families(text: str) -> dict[str, tuple[str, list]]:
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def engine_down_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    env = {"HEARTH_METRICS_TOKEN": TOKEN}
    data_dir = tmp_path_factory.mktemp("ops-down")
    app = AppProcess(data_dir, engine="ollama", ollama_host=nothing_listens, extra_env=env)
    with app:
        yield app


# -- the healthy app ---------------------------------------------------------------------------


def test_healthz_answers_ok_without_a_login(app_server: AppProcess):
    response = get(app_server.url, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert get(app_server.url, "/gradio_api/info").status_code == 401, "the rest needs a login"


def test_readyz_is_200_when_the_engine_answers_and_the_database_takes_a_write(
    app_server: AppProcess,
):
    response = get(app_server.url, "/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "engine": True,
        "database": True,
        "shutdown": True,
    }


def test_metrics_parse_with_prometheus_parser_and_name_the_hearth_families(
    app_server: AppProcess,
):
    response = get(app_server.url, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST  # Prometheus' text format
    found = families(response.text)
    for name, kind in OPS_FAMILIES.items():
        assert found.get(name, (None,))[0] == kind, name
    [up] = found["hearth_engine_up"][1]
    assert (up.labels, up.value) == ({"engine": "embedded"}, 1.0)
    [chats] = found["hearth_engine_chats_in_flight"][1]
    assert (chats.labels, chats.value) == ({"engine": "embedded"}, 0.0)
    loads = {
        s.labels["decision"] for s in found["hearth_model_loads"][1] if s.name.endswith("_total")
    }
    assert loads == {"admit", "warn", "refuse", "override"}
    [rss] = found["process_resident_memory_bytes"][1]
    assert rss.value > 10 * 1024**2
    for _, samples in found.values():
        for sample in samples:
            assert not {"user", "username", "name"} & set(sample.labels), sample


def test_restore_is_refused_while_the_app_runs(app_server: AppProcess, tmp_path: Path):
    db = app_server.data_dir / "hearth.db"
    inode = db.stat().st_ino  # a swap would put another file here
    backup = tmp_path / "hearth-backup.db"
    taken = _app_cli(app_server, "backup", str(backup))
    assert taken.returncode == 0, taken.stderr
    restored = _app_cli(app_server, "restore", str(backup))
    assert restored.returncode == 2
    assert restored.stderr.startswith("error: Hearth is running on")
    assert "stop it first" in restored.stderr and len(restored.stderr.splitlines()) == 1
    assert db.stat().st_ino == inode
    assert get(app_server.url, "/readyz").status_code == 200
    assert not list(app_server.data_dir.glob("hearth.db.before-restore-*"))
    assert not (app_server.data_dir / "hearth.db.restoring").exists()


def _app_cli(app: AppProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args, "--data-dir", str(app.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


# -- the app whose engine is down, with a metrics token ---------------------------------------


def test_readyz_is_503_and_names_the_engine_when_ollama_refuses(engine_down_app: AppProcess):
    response = get(engine_down_app.url, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["failed"] == ["engine"]
    engine = body["checks"]["engine"]
    assert not engine["ok"] and engine_down_app.ollama_host in engine["detail"]
    assert body["checks"]["database"]["ok"]
    assert get(engine_down_app.url, "/healthz").status_code == 200, "alive, though not ready"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
def test_metrics_without_the_token_is_401(engine_down_app: AppProcess, authorization: str | None):
    headers = {"Authorization": authorization} if authorization else {}
    response = get(engine_down_app.url, "/metrics", **headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "hearth_" not in response.text


def test_metrics_with_the_token_show_the_engine_down(engine_down_app: AppProcess):
    response = get(engine_down_app.url, "/metrics", Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200
    [up] = families(response.text)["hearth_engine_up"][1]
    assert (up.labels, up.value) == ({"engine": "ollama"}, 0.0)
