"""OllamaEngine's pure mappings: errors, final-chunk stats, request options, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from ollama import RequestError, ResponseError

from backend.engines.base import (
    ChatOptions,
    EngineBusy,
    EngineError,
    EngineUnavailable,
    ModelNotFound,
    OutOfMemory,
)
from backend.engines.ollama import (
    expiry_iso,
    map_error,
    options_to_ollama,
    same_model,
    stats_from_final,
)
from backend.engines.retry import OLLAMA_BUSY_TEXT

HOST = "http://gpu-box:11434"


@pytest.mark.parametrize(
    "text",
    [
        "llama runner process has terminated: cudaMalloc failed: out of memory",
        "CUDA error: out of memory",
        "ggml_backend_cuda_buffer_type_alloc_buffer: failed to allocate CUDA0 buffer",
        "model requires more system memory than is available: insufficient memory",
    ],
)
def test_oom_texts_become_out_of_memory(text: str) -> None:
    error = map_error(ResponseError(f'{{"error": "{text}"}}', 500), host=HOST, model="big:70b")

    assert isinstance(error, OutOfMemory)
    assert text in str(error) and "big:70b" in str(error)


def test_oom_inside_the_stream_is_still_out_of_memory() -> None:
    assert isinstance(map_error(ResponseError("CUDA error: out of memory"), host=HOST), OutOfMemory)


def test_404_becomes_model_not_found_for_that_model() -> None:
    error = map_error(
        ResponseError('{"error":"model \'x:1b\' not found"}', 404), host=HOST, model="x:1b"
    )

    assert isinstance(error, ModelNotFound)
    assert error.model == "x:1b"
    assert HOST in str(error) and "not found" in str(error)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (f'{{"error":"{OLLAMA_BUSY_TEXT}"}}', 503),  # OLLAMA_MAX_QUEUE is full
        ('{"error":"service unavailable"}', 503),  # any 503: a proxy in front of Ollama
        (OLLAMA_BUSY_TEXT, -1),  # the same words inside a stream
    ],
)
def test_a_busy_ollama_becomes_engine_busy(body: str, status: int) -> None:
    error = map_error(ResponseError(body, status), host=HOST, model="m")

    assert isinstance(error, EngineBusy) and isinstance(error, EngineUnavailable)
    assert HOST in str(error)


def test_in_stream_error_keeps_ollamas_text() -> None:
    error = map_error(ResponseError("unexpected EOF"), host=HOST, model="m")

    assert type(error) is EngineError
    assert "unexpected EOF" in str(error)


def test_other_http_errors_carry_status_and_text() -> None:
    error = map_error(ResponseError('{"error":"something broke"}', 500), host=HOST, model="m")

    assert type(error) is EngineError
    assert str(error) == "Ollama error 500: something broke"


def test_plain_text_error_body_is_kept() -> None:
    error = map_error(ResponseError("502 Bad Gateway", 502), host=HOST)

    assert str(error) == "Ollama error 502: 502 Bad Gateway"


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("Failed to connect to Ollama."),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
    ],
)
def test_connection_failures_become_unavailable_with_the_host(exc: Exception) -> None:
    error = map_error(exc, host=HOST)

    assert isinstance(error, EngineUnavailable)
    assert f"Ollama is not reachable at {HOST}" in str(error)


def test_lost_connection_mid_stream_is_unavailable() -> None:
    error = map_error(httpx.RemoteProtocolError("peer closed connection"), host=HOST)

    assert isinstance(error, EngineUnavailable)
    assert "peer closed connection" in str(error)


def test_read_timeout_is_an_engine_error_naming_the_host() -> None:
    error = map_error(httpx.ReadTimeout(""), host=HOST)

    assert type(error) is EngineError
    assert HOST in str(error) and "ReadTimeout" in str(error)


def test_request_error_is_an_engine_error() -> None:
    error = map_error(RequestError("must provide a model"), host=HOST)

    assert "must provide a model" in str(error)


def test_stats_from_a_final_chunk() -> None:
    final = {
        "done": True,
        "done_reason": "stop",
        "total_duration": 4_883_583_458,
        "load_duration": 1_334_875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342_546_000,
        "eval_count": 282,
        "eval_duration": 4_535_599_000,
    }

    stats = stats_from_final(final, ttft_ms=350.0, wall_ms=5000.0)

    assert stats.done_reason == "stop"
    assert (stats.prompt_tokens, stats.reply_tokens) == (26, 282)
    assert stats.tokens_per_s == pytest.approx(282 / 4.535599)
    assert stats.total_ms == pytest.approx(4883.583458)
    assert stats.load_ms == pytest.approx(1.334875)
    assert stats.ttft_ms == 350.0


def test_stats_when_metrics_are_absent() -> None:
    stats = stats_from_final({"done": True}, ttft_ms=None, wall_ms=12.5)

    assert stats.done_reason == "stop"
    assert stats.prompt_tokens is None and stats.reply_tokens is None
    assert stats.tokens_per_s is None and stats.load_ms is None
    assert stats.total_ms == 12.5  # our own clock when Ollama gives none


def test_options_only_carry_what_is_set() -> None:
    assert options_to_ollama(ChatOptions()) == {"temperature": 0.3, "num_ctx": 4096}
    full = ChatOptions(temperature=0.0, num_ctx=8192, num_predict=64, seed=7, top_p=0.9)
    assert options_to_ollama(full) == {
        "temperature": 0.0,
        "num_ctx": 8192,
        "num_predict": 64,
        "seed": 7,
        "top_p": 0.9,
    }


def test_expiry_far_in_the_future_means_never() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)

    assert expiry_iso(now + timedelta(minutes=5), now=now) == "2025-01-01T00:05:00+00:00"
    assert expiry_iso(datetime(2318, 4, 1, tzinfo=UTC), now=now) == ""
    assert expiry_iso(None, now=now) == ""


def test_names_without_a_tag_mean_latest() -> None:
    assert same_model("llama3", "llama3:latest")
    assert not same_model("llama3", "llama3:8b")
    assert same_model("registry.local:5000/team/model", "registry.local:5000/team/model:latest")
