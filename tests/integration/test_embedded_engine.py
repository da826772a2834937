import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    ModelNotFound,
)
from backend.engines.embedded import BUNDLED_MODEL_NAME, EmbeddedEngine

PARIS = [ChatMessage("user", "What is the capital of France? Answer in one sentence.")]
GREEDY = ChatOptions(temperature=0.0, num_ctx=2048, seed=1)
LONG = [ChatMessage("user", "Write a very long story about a dragon and a knight.")]


def _text(items) -> str:
    return "".join(i.text for i in items if isinstance(i, ChatDelta))


def test_bundled_model_answers_with_its_own_stats(embedded_engine):
    items = list(embedded_engine.chat(BUNDLED_MODEL_NAME, PARIS, GREEDY))
    stats = items[-1]
    assert _text(items).strip()
    assert isinstance(stats, ChatStats)
    assert stats.done_reason == "stop"
    assert stats.prompt_tokens > 10
    assert stats.reply_tokens >= 5
    assert stats.tokens_per_s > 0
    assert stats.ttft_ms is not None and stats.ttft_ms <= stats.total_ms


def test_reply_streams_in_several_deltas(embedded_engine):
    deltas = [
        i
        for i in embedded_engine.chat(BUNDLED_MODEL_NAME, PARIS, GREEDY)
        if isinstance(i, ChatDelta)
    ]
    assert len(deltas) >= 5


@pytest.mark.parametrize("cap", [1, 2, 8])
def test_num_predict_caps_the_reply_and_its_count(embedded_engine, cap):
    # A reply cut by its cap has exactly cap tokens, on any CPU; quotas count them as Ollama's
    # eval_count does (the one-token cap once reported 2).
    options = ChatOptions(temperature=0.0, num_ctx=2048, num_predict=cap)
    stats = list(embedded_engine.chat(BUNDLED_MODEL_NAME, LONG, options))[-1]
    assert stats.done_reason == "length"
    assert stats.reply_tokens == cap


def test_cancel_stops_mid_stream(embedded_engine):
    cancel = threading.Event()
    received = []
    for item in embedded_engine.chat(BUNDLED_MODEL_NAME, LONG, GREEDY, cancel):
        received.append(item)
        if len(received) == 5:
            cancel.set()
    stats = received[-1]
    assert stats.done_reason == "cancelled"
    assert len(received) <= 7
    assert stats.reply_tokens <= 7


def test_closing_the_stream_frees_the_engine_for_the_next_request(embedded_engine):
    stream = embedded_engine.chat(BUNDLED_MODEL_NAME, LONG, GREEDY)
    next(stream)
    stream.close()
    follow_up = _text(embedded_engine.chat(BUNDLED_MODEL_NAME, PARIS, GREEDY))
    # What the model says differs between CPUs; on one machine a greedy reply is the same
    # every time, so an engine left in a bad state by the closed stream would show here.
    assert follow_up == _text(embedded_engine.chat(BUNDLED_MODEL_NAME, PARIS, GREEDY))
    assert follow_up.strip()


def test_changing_num_ctx_reloads_the_model(embedded_engine):
    list(embedded_engine.chat(BUNDLED_MODEL_NAME, PARIS, ChatOptions(num_ctx=1024, num_predict=2)))
    assert embedded_engine.loaded_models()[0].context_length == 1024
    list(embedded_engine.chat(BUNDLED_MODEL_NAME, PARIS, ChatOptions(num_ctx=2048, num_predict=2)))
    assert embedded_engine.loaded_models()[0].context_length == 2048


def _calls(engine: EmbeddedEngine, model: str) -> dict[str, Callable[[], object]]:
    return {
        "chat": lambda: list(engine.chat(model, PARIS, GREEDY)),
        "show": lambda: engine.show(model),
        "load": lambda: engine.load(model, 2048),
        "delete": lambda: engine.delete(model),
    }


@pytest.mark.parametrize("model", ["bundled file", "outside file", "../outside", "../outside.gguf",
                                   "sub/../../outside", "C:\\models\\x.gguf"])  # fmt: skip
def test_a_path_is_never_a_model(tmp_path: Path, smollm_path: Path, model: str):
    models = tmp_path / "models"
    models.mkdir()
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"GGUF" + b"\0" * 64)
    named = {"bundled file": str(smollm_path), "outside file": str(outside)}.get(model, model)
    engine = EmbeddedEngine(models)
    for what, call in _calls(engine, named).items():
        with pytest.raises(ModelNotFound, match="is not a model name: it is a file path") as found:
            call()
        assert len(str(found.value)) < 200, what  # the name is quoted cut short
    assert outside.exists() and smollm_path.exists()
    assert engine.loaded_models() == []


def test_delete_removes_only_files_inside_the_model_folder(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    outside = tmp_path / "precious.gguf"
    outside.write_bytes(b"GGUF" + b"\0" * 64)
    (models / "link.gguf").symlink_to(outside)
    (models / "mine.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    engine = EmbeddedEngine(models, include_bundled=False)
    assert sorted(m.name for m in engine.list_models()) == ["link", "mine"]
    with pytest.raises(EngineError, match=r"link\.gguf links to a file outside"):
        engine.delete("link")
    assert outside.exists() and (models / "link.gguf").is_symlink()
    engine.delete("mine")
    assert not (models / "mine.gguf").exists()
    with pytest.raises(ModelNotFound):
        engine.delete("mine")


def test_the_bundled_model_is_never_deleted(tmp_path: Path, smollm_path: Path):
    with pytest.raises(EngineError, match="bundled model cannot be deleted"):
        EmbeddedEngine(tmp_path).delete(BUNDLED_MODEL_NAME)
    assert smollm_path.exists()


@pytest.mark.parametrize("num_ctx", [10**9, 0, -1, "4096", 2.5, None, True])
def test_a_context_outside_the_hard_bounds_is_refused_before_loading(tmp_path: Path, num_ctx):
    engine = EmbeddedEngine(tmp_path)
    with pytest.raises(EngineError, match="context length must be"):
        engine.load(BUNDLED_MODEL_NAME, num_ctx)
    assert engine.loaded_models() == []


def test_a_context_beyond_training_is_capped_like_ollama_does(embedded_engine):
    embedded_engine.load(BUNDLED_MODEL_NAME, 100_000)
    assert embedded_engine.loaded_models()[0].context_length == 8192  # SmolLM2's trained context


def test_unknown_model_name_is_not_found(tmp_path: Path):
    with pytest.raises(ModelNotFound, match="'llama3:70b' is not installed"):
        list(EmbeddedEngine(tmp_path).chat("llama3:70b", PARIS, GREEDY))


def test_corrupt_gguf_is_an_engine_error_not_a_crash(tmp_path: Path):
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    engine = EmbeddedEngine(tmp_path, include_bundled=False)
    assert [m.name for m in engine.list_models()] == ["broken"]
    with pytest.raises(EngineError, match=r"broken\.gguf is not a readable GGUF file"):
        list(engine.chat("broken", PARIS, GREEDY))


def test_models_dir_files_are_listed_beside_the_bundled_one(tmp_path: Path, smollm_path: Path):
    (tmp_path / "my-model.Q4_1.gguf").symlink_to(smollm_path)
    names = {m.name: m for m in EmbeddedEngine(tmp_path).list_models()}
    assert set(names) == {BUNDLED_MODEL_NAME, "my-model.Q4_1"}
    assert names["my-model.Q4_1"].quantization == "Q4_1"


def test_show_reads_architecture_from_the_gguf_header(embedded_engine):
    spec = embedded_engine.show(BUNDLED_MODEL_NAME)
    assert (spec.architecture, spec.block_count, spec.embedding_length) == ("llama", 30, 576)
    assert (spec.head_count, spec.head_count_kv, spec.context_length) == (9, 3, 8192)
    assert spec.quantization == "Q4_1"
    assert 130e6 < spec.parameter_count < 140e6


def test_status_is_reachable_with_the_bundled_model(embedded_engine):
    status = embedded_engine.status()
    assert status.reachable
    assert status.name == "embedded"
