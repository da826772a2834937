"""OllamaEngine over real HTTP against the Ollama protocol test server (real SmolLM2 tokens)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    EngineUnavailable,
    ModelNotFound,
    OutOfMemory,
)
from backend.engines.ollama import OllamaEngine
from backend.estimate.gguf_spec import spec_from_gguf
from backend.estimate.memory import estimate_memory
from backend.estimate.tensors import tensor_bytes
from tests.support.ollama_server import BUNDLED_NAME, OOM_ERROR, STREAM_ERROR, OllamaTestServer
from tests.support.tiny_gguf import smollm2_path

pytest_plugins = ["tests.support.fixtures_ollama"]

ROOT = Path(__file__).resolve().parents[2]

FRANCE = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What is the capital of France?"),
]
GREEDY = ChatOptions(temperature=0.0, num_ctx=2048, num_predict=32)
LONG = ChatOptions(temperature=0.0, num_ctx=2048, num_predict=200)
STORY = [ChatMessage("user", "Write a long story about a dragon who learns to bake bread.")]


# -- chat ------------------------------------------------------------------------------------


def test_streaming_chat_yields_real_text_and_final_stats(
    ollama_engine: OllamaEngine, ollama_generator
) -> None:
    items = list(ollama_engine.chat(BUNDLED_NAME, FRANCE, GREEDY))

    deltas = [item for item in items if isinstance(item, ChatDelta)]
    stats = items[-1]
    assert len(deltas) > 1
    direct = ollama_generator.chat(BUNDLED_NAME, FRANCE, GREEDY)
    assert "".join(d.text for d in deltas) == "".join(
        item.text for item in direct if isinstance(item, ChatDelta)
    ), "the protocol server must stream exactly what its engine generates"
    assert isinstance(stats, ChatStats)
    assert stats.done_reason == "stop"
    assert stats.prompt_tokens and stats.prompt_tokens > 0
    assert stats.reply_tokens and stats.reply_tokens > 0
    assert stats.tokens_per_s and stats.tokens_per_s > 0
    assert stats.ttft_ms is not None and stats.total_ms is not None
    assert stats.ttft_ms <= stats.total_ms + 1.0  # ours vs Ollama's clock: allow rounding


def test_num_predict_reaches_the_server(ollama_engine: OllamaEngine) -> None:
    options = ChatOptions(temperature=0.0, num_ctx=2048, num_predict=3)
    stats = list(ollama_engine.chat(BUNDLED_NAME, STORY, options))[-1]

    assert isinstance(stats, ChatStats)
    assert stats.done_reason == "length"


def test_chat_with_unknown_model_raises_model_not_found(ollama_engine: OllamaEngine) -> None:
    with pytest.raises(ModelNotFound, match="llama9:70b") as caught:
        list(ollama_engine.chat("llama9:70b", FRANCE, GREEDY))
    assert caught.value.model == "llama9:70b"


def test_in_stream_error_raises_engine_error_with_server_text(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    ollama_server.add_model("flaky:1b", stream_error=STREAM_ERROR, stream_error_after=2)
    received: list[ChatDelta | ChatStats] = []

    with pytest.raises(EngineError, match="unexpected EOF") as caught:
        received.extend(ollama_engine.chat("flaky:1b", STORY, LONG))

    assert type(caught.value) is EngineError
    assert len(received) == 2  # the text before the failure did arrive


def test_load_out_of_memory_raises_out_of_memory(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    ollama_server.add_model("huge:70b", load_error=OOM_ERROR)

    with pytest.raises(OutOfMemory, match="cudaMalloc failed"):
        list(ollama_engine.chat("huge:70b", FRANCE, GREEDY))
    with pytest.raises(OutOfMemory, match="huge:70b"):
        ollama_engine.load("huge:70b", 4096)


def test_cancel_event_stops_generation_and_ends_with_cancelled_stats(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    cancel = threading.Event()
    items: list[ChatDelta | ChatStats] = []
    for item in ollama_engine.chat(BUNDLED_NAME, STORY, LONG, cancel):
        items.append(item)
        if len(items) == 3:
            cancel.set()

    assert [type(i) for i in items] == [ChatDelta] * 3 + [ChatStats]
    assert isinstance(items[-1], ChatStats) and items[-1].done_reason == "cancelled"
    assert ollama_server.wait_until(lambda seen: seen.chat_disconnects == 1)
    assert ollama_server.events.chunks_streamed < LONG.num_predict  # stopped early


def test_closing_the_chat_generator_closes_the_connection(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    stream = ollama_engine.chat(BUNDLED_NAME, STORY, LONG)
    assert isinstance(next(stream), ChatDelta)
    stream.close()

    assert ollama_server.wait_until(lambda seen: seen.chat_disconnects == 1)
    assert ollama_server.events.chunks_streamed < LONG.num_predict


# -- reachability ----------------------------------------------------------------------------


def test_status_reports_the_server_version(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    status = ollama_engine.status()

    assert status.reachable
    assert status.version == ollama_server.version
    assert ollama_server.url in status.detail


def test_refused_connection_is_unavailable_and_status_says_so(refused_ollama_host: str) -> None:
    host = refused_ollama_host
    engine = OllamaEngine(host, timeout_s=5)

    status = engine.status()
    assert not status.reachable
    assert host in status.detail and "not reachable" in status.detail
    with pytest.raises(EngineUnavailable, match="not reachable"):
        engine.list_models()
    with pytest.raises(EngineUnavailable, match=host):
        list(engine.chat(BUNDLED_NAME, FRANCE, GREEDY))
    with pytest.raises(EngineUnavailable):
        list(engine.pull("smollm2:360m"))


@pytest.mark.parametrize("model", ["/abs/path.gguf", "../../etc/x.gguf", "a\x00b", "x" * 301,
                                   "\ud800", ""])  # fmt: skip
def test_names_only_are_sent_to_ollama(refused_ollama_host: str, model: str) -> None:
    # Nothing listens at this host: a ModelNotFound (not EngineUnavailable) proves the name was
    # refused before any request left.
    engine = OllamaEngine(refused_ollama_host, timeout_s=5)
    calls = {
        "chat": lambda: list(engine.chat(model, FRANCE, GREEDY)),
        "show": lambda: engine.show(model),
        "pull": lambda: list(engine.pull(model)),
        "delete": lambda: engine.delete(model),
        "load": lambda: engine.load(model, 2048),
        "unload": lambda: engine.unload(model),
    }
    for what, call in calls.items():
        with pytest.raises(ModelNotFound, match="is not a model name") as refused:
            call()
        assert len(str(refused.value)) < 200, what


@pytest.mark.parametrize("num_ctx", [10**9, 0, "4096", float("inf")])
def test_a_context_outside_the_hard_bounds_never_reaches_ollama(
    refused_ollama_host: str, num_ctx: object
) -> None:
    engine = OllamaEngine(refused_ollama_host, timeout_s=5)
    with pytest.raises(EngineError, match="context length must be"):
        engine.load(BUNDLED_NAME, num_ctx)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="context length must be"):
        list(engine.chat(BUNDLED_NAME, FRANCE, ChatOptions(num_ctx=num_ctx)))  # type: ignore[arg-type]


# -- models ----------------------------------------------------------------------------------


def test_list_models_reports_details(ollama_engine: OllamaEngine) -> None:
    (model,) = ollama_engine.list_models()

    assert model.name == BUNDLED_NAME
    assert model.family == "llama"
    assert model.parameter_size == "134.52M"
    assert model.quantization == "Q4_1"
    assert model.size_bytes > 90 * 2**20
    assert model.modified_at.startswith("20")


def test_show_reads_architecture_from_the_real_gguf(ollama_engine: OllamaEngine) -> None:
    spec = ollama_engine.show(BUNDLED_NAME)
    listed = ollama_engine.list_models()[0]

    assert (spec.architecture, spec.block_count, spec.embedding_length) == ("llama", 30, 576)
    assert (spec.head_count, spec.head_count_kv, spec.head_dim_k) == (9, 3, 64)
    assert spec.context_length == 8192
    assert spec.vocab_size == 49152
    assert spec.parameter_count == 134_515_008
    assert spec.quantization == "Q4_1"
    assert spec.file_size_bytes == listed.size_bytes


def test_show_reads_the_files_tensors_and_the_estimate_uses_them(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    spec = ollama_engine.show(BUNDLED_NAME)  # verbose=true: Ollama adds {name, type, shape}
    assert len(spec.tensors) == len(ollama_server.facts.tensors) > 0
    assert {t.type for t in spec.tensors} >= {"Q4_1", "F32"}
    assert spec.tied_embeddings  # SmolLM2 has no output.weight
    estimate = estimate_memory(spec, num_ctx=2048)
    assert estimate.weights_source == "exact"
    assert estimate.weights_bytes == sum(tensor_bytes(t) for t in spec.tensors)
    assert spec_from_gguf(smollm2_path()).tensors == spec.tensors  # the GGUF header agrees


def test_show_sends_tensors_only_when_verbose(ollama_server: OllamaTestServer) -> None:
    plain = httpx.post(f"{ollama_server.url}/api/show", json={"model": BUNDLED_NAME}).json()
    assert "tensors" not in plain and plain["model_info"]["tokenizer.ggml.tokens"] == []
    raw = httpx.post(f"{ollama_server.url}/api/show", json={"model": BUNDLED_NAME, "verbose": True})
    body = raw.json()
    assert list(body).index("tensors") == list(body).index("model_info") + 1  # Go field order
    first = body["tensors"][0]
    assert set(first) == {"name", "type", "shape"} and first["name"] == "token_embd.weight"
    assert first["shape"] == [576, 49152]  # ne0 first, as Ollama writes it
    assert len(body["model_info"]["tokenizer.ggml.tokens"]) == 49152  # arrays in full


def test_show_unknown_model_raises_model_not_found(ollama_engine: OllamaEngine) -> None:
    with pytest.raises(ModelNotFound):
        ollama_engine.show("nothing:here")


def test_pull_streams_progress_to_success_and_installs(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    ollama_server.add_registry_tag("tiny:1m", [3_000_000, 1_500])

    progress = list(ollama_engine.pull("tiny:1m"))

    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    first_layer = [p for p in progress if p.total_bytes == 3_000_000]
    completed = [p.completed_bytes or 0 for p in first_layer]
    assert len(first_layer) > 2 and completed == sorted(completed) and completed[-1] == 3_000_000
    assert first_layer[0].digest.startswith("sha256:")
    assert "tiny:1m" in [m.name for m in ollama_engine.list_models()]


def test_closing_a_pull_cancels_it(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    pull = ollama_engine.pull("smollm2:360m")
    for progress in pull:
        if progress.completed_bytes:
            break
    pull.close()

    assert ollama_server.wait_until(lambda seen: seen.pull_disconnects == 1)
    assert "smollm2:360m" not in [m.name for m in ollama_engine.list_models()]
    assert ollama_server.events.pulls_completed == 0


def test_pull_unknown_tag_raises_with_the_server_text(ollama_engine: OllamaEngine) -> None:
    with pytest.raises(ModelNotFound, match="file does not exist"):
        list(ollama_engine.pull("nosuch:1b"))


def test_delete_removes_and_second_delete_is_not_found(ollama_engine: OllamaEngine) -> None:
    ollama_engine.delete(BUNDLED_NAME)

    assert ollama_engine.list_models() == []
    with pytest.raises(ModelNotFound, match=BUNDLED_NAME):
        ollama_engine.delete(BUNDLED_NAME)


def test_load_shows_in_loaded_models_and_unload_removes(ollama_engine: OllamaEngine) -> None:
    ollama_engine.load(BUNDLED_NAME, 8192)

    (loaded,) = ollama_engine.loaded_models()
    assert loaded.name == BUNDLED_NAME
    assert loaded.context_length == 8192
    assert loaded.vram_bytes == loaded.size_bytes  # fully offloaded by default
    assert loaded.expires_at  # default keep_alive: it expires

    ollama_engine.unload(BUNDLED_NAME)
    assert ollama_engine.loaded_models() == []


def test_larger_context_makes_the_loaded_model_bigger(ollama_engine: OllamaEngine) -> None:
    ollama_engine.load(BUNDLED_NAME, 2048)
    small = ollama_engine.loaded_models()[0].size_bytes
    ollama_engine.load(BUNDLED_NAME, 8192)
    large = ollama_engine.loaded_models()[0].size_bytes

    assert large > small


def test_partial_offload_reports_less_vram_than_size(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    ollama_server.add_model("split:7b", vram_bytes=60 * 2**20)

    ollama_engine.load("split:7b", 4096)

    (loaded,) = ollama_engine.loaded_models()
    assert loaded.vram_bytes == 60 * 2**20
    assert loaded.vram_bytes < loaded.size_bytes
    assert loaded.ram_bytes == loaded.size_bytes - loaded.vram_bytes


def test_unload_with_unknown_model_raises_model_not_found(ollama_engine: OllamaEngine) -> None:
    with pytest.raises(ModelNotFound):
        ollama_engine.unload("ghost:1b")


# -- the test server speaks the protocol as documented ------------------------------------


def test_server_streams_ndjson_chunks_with_final_metrics(ollama_server: OllamaTestServer) -> None:
    body = {
        "model": BUNDLED_NAME,
        "messages": [{"role": "user", "content": "Hi"}],
        "options": {"num_predict": 4, "num_ctx": 2048},
    }
    with httpx.stream("POST", f"{ollama_server.url}/api/chat", json=body) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [httpx.Response(200, content=line).json() for line in response.iter_lines()]

    assert all(line["done"] is False for line in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "length"
    assert final["message"] == {"role": "assistant", "content": ""}
    for key in ("total_duration", "load_duration", "prompt_eval_count", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0


def test_server_errors_have_ollama_shapes(ollama_server: OllamaTestServer) -> None:
    url = ollama_server.url
    missing = httpx.post(f"{url}/api/chat", json={"model": "x:1b", "messages": []})
    assert (missing.status_code, missing.text) == (404, '{"error":"model \'x:1b\' not found"}')
    assert missing.headers["content-type"] == "application/json; charset=utf-8"
    assert httpx.post(f"{url}/api/chat", content=b"").json() == {"error": "missing request body"}
    assert httpx.request("DELETE", f"{url}/api/delete", json={"model": "x"}).status_code == 404
    assert httpx.get(f"{url}/api/nothing").text == "404 page not found"
    assert httpx.get(f"{url}/api/chat").status_code == 405


def test_server_load_and_unload_answer_with_done_reasons(ollama_server: OllamaTestServer) -> None:
    url = f"{ollama_server.url}/api/chat"
    loaded = httpx.post(url, json={"model": BUNDLED_NAME, "messages": []}).json()
    unloaded = httpx.post(url, json={"model": BUNDLED_NAME, "messages": [], "keep_alive": 0})

    assert (loaded["done"], loaded["done_reason"]) == (True, "load")
    assert unloaded.json()["done_reason"] == "unload"
    assert httpx.get(f"{ollama_server.url}/api/ps").json() == {"models": []}


def test_model_kept_forever_has_no_expiry(
    ollama_engine: OllamaEngine, ollama_server: OllamaTestServer
) -> None:
    body = {"model": BUNDLED_NAME, "keep_alive": -1}
    assert (
        httpx.post(f"{ollama_server.url}/api/generate", json=body).json()["done_reason"] == "load"
    )

    (loaded,) = ollama_engine.loaded_models()
    assert loaded.expires_at == ""


@pytest.mark.slow
def test_server_runs_as_a_script_and_prints_its_url() -> None:
    command = [sys.executable, "-m", "tests.support.ollama_server", "--port", "0"]
    command += ["--install", "llama3.1:8b"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        try:
            url = (process.stdout.readline() if process.stdout else "").strip()
            engine = OllamaEngine(url, timeout_s=30)
            assert engine.status().reachable
            assert {m.name for m in engine.list_models()} == {BUNDLED_NAME, "llama3.1:8b"}
        finally:
            process.send_signal(signal.SIGINT)
    assert process.returncode == 0
