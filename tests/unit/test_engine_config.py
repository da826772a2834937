"""HEARTH_ENGINES: a JSON list or a file, validated with sentences; API keys never shown."""

from __future__ import annotations

import json

import pytest

from backend.engines.base import LoadedModel
from backend.engines.config import EngineSpec, GpuFacts, engine_specs
from backend.engines.pool_member import EngineCard
from backend.settings import SettingsError, from_env
from ui.hardware.render import pool_engine_card

KEY = "sk-secret-91c2"
ENGINES = [
    {"name": "box1", "kind": "ollama", "url": "10.0.0.11", "gpu_facts": "local"},
    {"name": "big", "kind": "openai", "url": "http://10.0.0.20:8000/v1/", "api_key": KEY,
     "gpu_facts": "declared:80"},
]  # fmt: skip


def test_a_json_list_gives_one_spec_per_engine():
    specs = engine_specs(json.dumps(ENGINES))
    assert [(s.name, s.kind, s.url) for s in specs] == [
        ("box1", "ollama", "http://10.0.0.11:11434"),
        ("big", "openai", "http://10.0.0.20:8000/v1"),
    ]
    assert specs[0].gpu_facts == GpuFacts("local")
    assert specs[1].gpu_facts == GpuFacts("declared", declared_vram_gib=80.0)


def test_a_file_path_is_read(tmp_path):
    path = tmp_path / "engines.json"
    path.write_text(json.dumps(ENGINES), encoding="utf-8")
    assert [s.name for s in engine_specs(str(path))] == ["box1", "big"]


def test_unset_means_no_pool():
    assert engine_specs(None) == () and engine_specs("  ") == ()


def test_the_api_key_is_never_in_repr_or_settings_repr():
    spec = engine_specs(json.dumps(ENGINES))[1]
    assert spec.api_key == KEY
    assert KEY not in repr(spec)
    settings = from_env({"HEARTH_ENGINES": json.dumps(ENGINES)})
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ("[", "not valid JSON"),
        ("/nonexistent/engines.json", "neither a JSON list nor a readable file"),
        ("[]", "non-empty JSON list"),
        ('[{"name": "a", "kind": "vllm", "url": "http://x"}]', "kind must be ollama or openai"),
        ('[{"name": "a b", "kind": "ollama", "url": "http://x"}]', "name must be"),
        ('[{"name": "a", "kind": "openai", "url": "ftp://x"}]', "http:// or https://"),
        ('[{"name": "a", "kind": "ollama", "url": "x", "key": 1}]', "unknown key(s): key"),
        ('[{"name": "a", "kind": "ollama", "url": "x", "gpu_facts": "declared:-1"}]', "gpu_facts"),
        (
            '[{"name": "a", "kind": "ollama", "url": "x"}, {"name": "a", "kind": "ollama", '
            '"url": "y"}]',
            "name 'a' twice",
        ),
        ('[{"name": "a", "kind": "openai", "url": "http://x", "api_key": 5}]', "api_key"),
    ],
)
def test_a_bad_list_is_refused_with_a_sentence_naming_it(entries, says):
    with pytest.raises(SettingsError) as caught:
        engine_specs(entries)
    assert says in str(caught.value)


def test_an_engine_card_shows_state_and_loaded_models_but_never_the_key():
    spec = EngineSpec("big", "openai", "http://h:8000/v1", api_key=KEY)
    card = EngineCard(
        name=spec.name, kind=spec.kind, url=spec.url, up=True, detail="serving <b>x</b>",
        version="", loaded=(LoadedModel("llama3:70b", 40 << 30, 40 << 30, 8192),),
        installed_count=1, can_manage_models=False, chats_in_flight=2,
        server_facts="vLLM 0.6.3: 2 running, 0 waiting", gpu_facts="declared",
        api_key_set=bool(spec.api_key),
    )  # fmt: skip
    html = pool_engine_card(card)
    assert "Engine big · openai (up)" in html and "llama3:70b" in html and "8192" in html
    assert "set (not shown)" in html and KEY not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "chat only" in html and "2 running" in html
    down = pool_engine_card(EngineCard(**{**card.__dict__, "up": False, "loaded": ()}))
    assert "(down)" in down and "hh-error" in down


def test_a_spec_written_back_reads_as_the_same_spec():
    specs = engine_specs(json.dumps(ENGINES))
    assert engine_specs(json.dumps([s.entry() for s in specs])) == specs
    assert specs[1].entry()["api_key"] == KEY and "api_key" not in specs[0].entry()


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"name": "box\n", "kind": "ollama", "url": "h"}, "name must be 1-40"),
        ({"name": "x" * 100_000, "kind": "ollama", "url": "h"}, "name must be 1-40"),
        ({"name": "a", "kind": "ollama", "url": "http://h" + "x" * 3000}, "at most 2048"),
        ({"name": "a", "kind": "openai", "url": "http://a b"}, "not a server address"),
        ({"name": "a", "kind": "openai", "url": "http:///x"}, "not a server address"),
        ({"name": "a", "kind": "openai", "url": "http://h", "api_key": "k\x00"}, "one line"),
        ({"name": "a", "kind": "openai", "url": "http://h", "gpu_facts": "dcgm:http://"}, "dcgm"),
    ],
)
def test_bad_entries_are_refused_with_a_short_sentence(entry, says):
    with pytest.raises(SettingsError, match=says) as caught:
        engine_specs(json.dumps([entry]))
    assert len(str(caught.value)) < 300


def test_a_local_engine_card_shows_this_machines_gpus():
    from dataclasses import replace

    from tests.unit.test_readiness import gpu, snapshot

    card = EngineCard(
        name="box1", kind="ollama", url="http://127.0.0.1:11434", up=True, detail="ok",
        version="0.5.7", loaded=(), installed_count=0, can_manage_models=True,
        chats_in_flight=0, server_facts="", gpu_facts="this machine's NVML", api_key_set=False,
        gpu_source="local",
    )  # fmt: skip
    h100 = replace(gpu(1), vram_free_bytes=30 << 30)
    html = pool_engine_card(card, snapshot(gpus=(h100,)))
    assert "GPU 1 NVIDIA H100 80GB HBM3: 30.0 GiB free of" in html
    assert "no GPU seen" in pool_engine_card(card, snapshot(gpus=()))
    declared = pool_engine_card(EngineCard(**{**card.__dict__, "gpu_source": "declared"}))
    assert "this machine&#x27;s NVML" in declared and "H100" not in declared
