"""The OpenAI wire format's pure parts: request bodies, SSE, chunks, model lists, errors, stats."""

from __future__ import annotations

import json

import httpx
import pytest

from backend.engines.base import (
    ChatMessage,
    ChatOptions,
    EngineError,
    EngineUnavailable,
    ModelNotFound,
    OutOfMemory,
)
from backend.engines.openai_wire import (
    ReplyTally,
    StreamChunk,
    Usage,
    chat_request_body,
    checked_root_url,
    error_from_status,
    error_from_transport,
    error_message,
    parse_chunk,
    parse_model_list,
    redact,
    root_url,
    sse_data,
)
from tests.support import openai_texts as texts

URL = "http://gpu-box-2:8000"


@pytest.mark.parametrize(
    "given",
    ["http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/", " http://h:8000 "],
)
def test_root_url_accepts_the_base_url_with_or_without_v1(given: str) -> None:
    assert root_url(given) == "http://h:8000"


@pytest.mark.parametrize("given", ["", "gpu-box:8000", "ftp://h:8000", "http://[::1", "http://"])
def test_an_address_that_is_not_http_is_refused_by_name(given: str) -> None:
    with pytest.raises(EngineError) as raised:
        checked_root_url(given)
    assert f"'{given}'" in str(raised.value)


def test_checked_root_url_keeps_a_path_prefix() -> None:
    assert checked_root_url("https://gw.example/vllm/v1/") == "https://gw.example/vllm"


def test_request_body_streams_asks_for_usage_and_maps_options() -> None:
    options = ChatOptions(temperature=0.3, num_ctx=8192, num_predict=64, seed=7, top_p=0.9)
    body = chat_request_body("m", [ChatMessage("user", "hi")], options)
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.3,
        "max_tokens": 64,
        "seed": 7,
        "top_p": 0.9,
    }


def test_request_body_leaves_out_unset_options_and_num_ctx() -> None:
    body = chat_request_body("m", [ChatMessage("system", "s")], ChatOptions(temperature=0.0))
    assert set(body) == {"model", "messages", "stream", "stream_options", "temperature"}


def test_sse_data_joins_multiline_data_and_skips_comments_and_other_fields() -> None:
    lines = [": ping", "event: message", 'data: {"a":', "data: 1}", "", "", "data:[DONE]", ""]
    assert list(sse_data(lines)) == ['{"a":\n1}', "[DONE]"]


def test_sse_data_yields_an_event_left_unterminated_at_the_end() -> None:
    assert list(sse_data(["data: x"])) == ["x"]


def _chunk(choices: list, **extra: object) -> str:
    return json.dumps({"object": "chat.completion.chunk", "choices": choices, **extra})


def test_parse_chunk_content_and_finish() -> None:
    payload = _chunk([{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "length"}])
    assert parse_chunk(payload) == StreamChunk(text="Hi", finish_reason="length")


def test_parse_chunk_role_only_delta_has_no_text() -> None:
    payload = _chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])
    assert parse_chunk(payload) == StreamChunk()


def test_parse_chunk_usage_chunk_has_no_choices() -> None:
    payload = _chunk([], usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
    assert parse_chunk(payload).usage == Usage(12, 5)


@pytest.mark.parametrize(
    "payload",
    [
        '{"error": {"message": "boom", "type": "InternalServerError", "code": 500}}',
        '{"object": "error", "message": "boom", "type": "BadRequestError", "code": 400}',
    ],
)
def test_parse_chunk_error_events(payload: str) -> None:
    assert parse_chunk(payload).error == "boom"


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '"text"'])
def test_parse_chunk_garbage_is_an_error_not_a_crash(payload: str) -> None:
    assert parse_chunk(payload).error


def test_model_list_reads_vllm_max_model_len() -> None:
    payload = {"object": "list", "data": [{"id": "m", "owned_by": "vllm", "max_model_len": 8192}]}
    (model,) = parse_model_list(payload)
    assert (model.id, model.owned_by, model.max_model_len) == ("m", "vllm", 8192)


def test_model_list_reads_llama_server_meta() -> None:
    (model,) = parse_model_list(texts.LLAMA_SERVER_MODELS)
    assert model.id == texts.LLAMA_SERVER_MODEL
    assert (model.size_bytes, model.n_ctx_train, model.max_model_len) == (4677120000, 32768, None)


def test_model_list_skips_entries_without_an_id() -> None:
    payload = {"data": [{"object": "model"}, "x", {"id": "ok"}]}
    assert [m.id for m in parse_model_list(payload)] == ["ok"]


@pytest.mark.parametrize("payload", [{}, [], {"data": "x"}, None])
def test_model_list_that_is_not_a_list_is_refused(payload: object) -> None:
    with pytest.raises(ValueError):
        parse_model_list(payload)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"error": {"message": "context too long", "type": "BadRequestError"}}',
            "context too long",
        ),
        ('{"object": "error", "message": "old vllm", "code": 400}', "old vllm"),
        ('{"error": "Unauthorized"}', "Unauthorized"),
        ('{"detail": "Invalid API key"}', "Invalid API key"),
        ('{"detail": [{"loc": ["body"], "msg": "field required"}]}', "field required"),
        ("Internal Server Error", "Internal Server Error"),
    ],
)
def test_error_message_from_every_shape(body: str, message: str) -> None:
    assert message in error_message(body)


@pytest.mark.parametrize(
    "message",
    [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "torch.OutOfMemoryError: CUDA error",
        "No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
        "ggml_backend_cuda_buffer_type_alloc_buffer: failed to allocate CUDA0 buffer",
    ],
)
def test_oom_messages_become_out_of_memory(message: str) -> None:
    error = error_from_status(500, message, url=URL, model="m")
    assert isinstance(error, OutOfMemory)
    assert message in str(error)


@pytest.mark.parametrize(
    ("status", "model", "kind"),
    [
        (404, "m", ModelNotFound),
        (503, "m", EngineUnavailable),
        (401, "m", EngineError),
        (400, "m", EngineError),
        (404, None, EngineError),
    ],
)
def test_status_classification(status: int, model: str | None, kind: type) -> None:
    error = error_from_status(status, "the server's words", url=URL, model=model)
    assert type(error) is kind
    assert "the server's words" in str(error)
    assert URL in str(error)


def test_401_tells_the_admin_to_check_the_key() -> None:
    assert "API key" in str(error_from_status(401, "Unauthorized", url=URL, model=None))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), EngineUnavailable),
        (httpx.ConnectTimeout("slow"), EngineUnavailable),
        (httpx.ReadTimeout("slow"), EngineUnavailable),
        (httpx.RemoteProtocolError("incomplete chunked read"), EngineUnavailable),
        (httpx.ReadError("reset"), EngineUnavailable),
        (httpx.UnsupportedProtocol("ftp"), EngineError),
    ],
)
def test_transport_classification(exc: httpx.HTTPError, kind: type) -> None:
    error = error_from_transport(exc, url=URL, during="while testing")
    assert type(error) is kind
    assert URL in str(error)


def test_redact_hides_the_key() -> None:
    assert redact("bad key sk-123 given", "sk-123") == "bad key *** given"
    assert redact("nothing", None) == "nothing"


def test_tally_without_usage_counts_content_chunks_and_says_so() -> None:
    tally = ReplyTally()
    for text in ("a", "", "b", "c"):
        tally.note(StreamChunk(text=text))
    tally.note(StreamChunk(finish_reason="stop"))
    stats = tally.stats("stop")
    assert (stats.reply_tokens, stats.prompt_tokens, stats.counted_by) == (3, None, "hearth")
    assert stats.ttft_ms is not None and stats.total_ms is not None


def test_tally_with_usage_uses_the_servers_counts() -> None:
    tally = ReplyTally()
    tally.note(StreamChunk(text="a"))
    tally.note(StreamChunk(usage=Usage(prompt_tokens=30, completion_tokens=9)))
    stats = tally.stats("length")
    assert (stats.done_reason, stats.reply_tokens, stats.prompt_tokens) == ("length", 9, 30)
    assert stats.counted_by == "engine"


def test_tally_of_nothing_has_no_rate_or_ttft() -> None:
    stats = ReplyTally().stats("cancelled")
    assert (stats.reply_tokens, stats.ttft_ms, stats.tokens_per_s) == (0, None, None)
