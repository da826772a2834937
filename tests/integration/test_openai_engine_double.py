"""OpenAICompatEngine over real HTTP against the OpenAI protocol double (vLLM's behaviour).

The double covers what the real llama-cpp-python server cannot show: usage in the last chunk,
vLLM's model list and /metrics, llama-server's /props and /slots, a DCGM exporter, error
bodies, API keys, and streams that break in controlled places.
"""

from __future__ import annotations

import threading

import pytest

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    EngineUnavailable,
    ModelFactsUnavailable,
    ModelNotFound,
    OutOfMemory,
)
from backend.engines.openai_compat import OpenAICompatEngine
from backend.engines.server_facts import VllmLoad, read_dcgm_gpus
from backend.units import MIB
from tests.support import openai_texts as texts
from tests.support.fixtures_openai import DOUBLE_API_KEY
from tests.support.openai_double import PROMPT_TOKENS, REPLY, OpenAIDouble

MODEL = texts.VLLM_MODEL
HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello.")]
OPTIONS = ChatOptions(temperature=0.2, num_ctx=4096, num_predict=50, seed=11, top_p=0.8)


def _run(engine: OpenAICompatEngine, model: str = MODEL, **kwargs) -> list[ChatDelta | ChatStats]:
    return list(engine.chat(model, HELLO, OPTIONS, **kwargs))


def _text(items: list) -> str:
    return "".join(item.text for item in items if isinstance(item, ChatDelta))


# -- chat ------------------------------------------------------------------------------------


def test_stream_yields_deltas_then_the_servers_usage(vllm_engine: OpenAICompatEngine) -> None:
    items = _run(vllm_engine)

    assert [type(i) for i in items] == [ChatDelta] * len(REPLY) + [ChatStats]
    assert _text(items) == "".join(REPLY)
    stats = items[-1]
    assert (stats.done_reason, stats.counted_by) == ("stop", "engine")
    assert (stats.prompt_tokens, stats.reply_tokens) == (PROMPT_TOKENS, len(REPLY))
    assert stats.ttft_ms is not None and stats.total_ms is not None


def test_request_asks_for_usage_and_maps_options(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    _run(vllm_engine)

    (request,) = vllm_double.chat_requests()
    assert request.headers["Authorization"] == f"Bearer {DOUBLE_API_KEY}"
    body = request.body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (
        0.2, 50, 11, 0.8,
    )  # fmt: skip
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello."},
    ]


def test_without_usage_hearth_counts_and_says_so(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    vllm_double.controls.usage_supported = False
    stats = _run(vllm_engine)[-1]

    assert stats.counted_by == "hearth"
    assert stats.reply_tokens == len(REPLY)  # one content chunk, one token
    assert stats.prompt_tokens is None


def test_unlisted_model_is_refused_before_sending(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    with pytest.raises(ModelNotFound, match="no-such-model") as raised:
        _run(vllm_engine, "no-such-model")

    assert MODEL in str(raised.value)  # says what the server does serve
    assert vllm_double.chat_requests() == []


def test_404_from_the_server_is_model_not_found(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    error = {"message": f"The model `{MODEL}` does not exist.", "type": "NotFoundError"}
    vllm_double.controls.fail_next = (404, {"error": error, "code": 404})
    with pytest.raises(ModelNotFound, match="does not exist"):
        _run(vllm_engine)


def test_error_json_body_reaches_the_user(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    message = "This model's maximum context length is 8192 tokens. However, you requested 9000."
    vllm_double.controls.fail_next = (
        400, {"object": "error", "message": message, "type": "BadRequestError", "code": 400},
    )  # fmt: skip
    with pytest.raises(EngineError) as raised:
        _run(vllm_engine)

    assert type(raised.value) is EngineError
    assert message in str(raised.value) and "400" in str(raised.value)


def test_out_of_memory_answer_is_out_of_memory(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    error = {"message": "CUDA out of memory. Tried to allocate 2.00 GiB", "code": 500}
    vllm_double.controls.fail_next = (500, {"error": error})
    with pytest.raises(OutOfMemory, match="Tried to allocate"):
        _run(vllm_engine)


def test_error_inside_the_stream_ends_it_after_the_partial_text(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    vllm_double.controls.error_after = 2
    seen: list = []
    with pytest.raises(EngineError, match="illegal memory access"):
        seen.extend(vllm_engine.chat(MODEL, HELLO, OPTIONS))

    assert _text(seen) == "".join(REPLY[:2])


def test_connection_dropped_mid_stream_is_unavailable_with_partial_text(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    vllm_double.controls.abort_after = 3
    seen: list = []
    with pytest.raises(EngineUnavailable, match="Lost the connection"):
        seen.extend(vllm_engine.chat(MODEL, HELLO, OPTIONS))

    assert _text(seen) == "".join(REPLY[:3])


def test_done_without_finish_reason_is_an_error_not_a_complete_reply(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    vllm_double.controls.done_without_finish = True
    with pytest.raises(EngineError, match="early"):
        _run(vllm_engine)


def test_silent_server_mid_reply_is_cut_off(vllm_double: OpenAIDouble) -> None:
    vllm_double.controls.hold_at = 1
    engine = OpenAICompatEngine(vllm_double.url, api_key=DOUBLE_API_KEY, stall_timeout_s=0.5)
    seen: list = []
    with pytest.raises(EngineUnavailable, match="in time"):
        seen.extend(engine.chat(MODEL, HELLO, OPTIONS))

    assert _text(seen) == REPLY[0]
    assert vllm_double.controls.client_gone.wait(5)
    engine.close()


def test_cancel_before_the_first_byte_closes_the_connection(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    """The server holds the reply (as a long prompt would); cancel must not wait for it."""
    vllm_double.controls.hold_at = -1
    cancel = threading.Event()
    items: list = []
    consumer = threading.Thread(target=lambda: items.extend(_run(vllm_engine, cancel=cancel)))
    consumer.start()
    assert vllm_double.controls.chat_started.wait(10)

    cancel.set()
    consumer.join(timeout=5)

    assert not consumer.is_alive()
    assert not vllm_double.controls.release.is_set()  # it ended while the server still held
    assert vllm_double.controls.client_gone.wait(5)
    assert len(items) == 1 and items[0].done_reason == "cancelled"


def test_cancel_mid_stream_keeps_the_text_so_far(
    vllm_engine: OpenAICompatEngine, vllm_double: OpenAIDouble
) -> None:
    vllm_double.controls.hold_at = 2
    cancel = threading.Event()
    items: list = []
    for item in vllm_engine.chat(MODEL, HELLO, OPTIONS, cancel=cancel):
        items.append(item)
        if isinstance(item, ChatDelta) and item.text == REPLY[1]:
            cancel.set()

    assert _text(items) == "".join(REPLY[:2])
    assert items[-1].done_reason == "cancelled" and items[-1].reply_tokens == 2
    assert vllm_double.controls.client_gone.wait(5)


# -- API key -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-wrong-key-77", None])
def test_bad_or_missing_key_is_refused_and_never_shown(
    vllm_double: OpenAIDouble, key: str | None
) -> None:
    engine = OpenAICompatEngine(vllm_double.url, api_key=key)

    status = engine.status()
    with pytest.raises(EngineError, match="API key") as raised:
        _run(engine)

    assert not status.reachable and "API key" in status.detail
    assert "Unauthorized" in str(raised.value)
    for shown in (status.detail, str(raised.value), repr(engine)):
        assert DOUBLE_API_KEY not in shown and (key is None or key not in shown)
    assert vllm_double.chat_requests() == []
    engine.close()


# -- what the server says about itself -------------------------------------------------------


def test_models_with_vllm_max_model_len(vllm_engine: OpenAICompatEngine) -> None:
    assert [m.name for m in vllm_engine.list_models()] == [MODEL]
    (loaded,) = vllm_engine.loaded_models()
    assert (loaded.name, loaded.context_length) == (MODEL, texts.VLLM_MAX_MODEL_LEN)
    status = vllm_engine.status()
    assert status.reachable and MODEL in status.detail and status.name == "vllm-box"


def test_show_says_what_is_known_and_refuses(vllm_engine: OpenAICompatEngine) -> None:
    with pytest.raises(ModelFactsUnavailable, match=str(texts.VLLM_MAX_MODEL_LEN)):
        vllm_engine.show(MODEL)
    with pytest.raises(ModelNotFound):
        vllm_engine.show("other")


def test_vllm_metrics_on_the_engine_card(vllm_engine: OpenAICompatEngine) -> None:
    facts = vllm_engine.server_facts()

    assert (facts.kind, facts.version) == ("vllm", texts.VLLM_VERSION)
    assert facts.vllm == VllmLoad(requests_running=2, requests_waiting=1, kv_cache_usage=0.37)
    assert facts.summary() == "vLLM 0.11.0: 2 running, 1 waiting, KV cache 37%"


def test_llama_server_props_and_slots_on_the_engine_card() -> None:
    with OpenAIDouble("llama-server") as double:
        engine = OpenAICompatEngine(double.url)
        facts = engine.server_facts()
        (served,) = engine.list_models()
        engine.close()

    assert facts.kind == "llama.cpp" and facts.llama_cpp is not None
    assert (facts.llama_cpp.health, facts.llama_cpp.slots_busy) == ("ok", 2)
    assert (facts.llama_cpp.slots_total, facts.llama_cpp.context_per_slot) == (4, 4096)
    assert (served.name, served.size_bytes) == (texts.LLAMA_SERVER_MODEL, 4677120000)


def test_dcgm_exporter_gives_bytes_per_gpu(dcgm_double: OpenAIDouble) -> None:
    gpus = read_dcgm_gpus(dcgm_double.url)

    assert [(g.index, g.free_bytes, g.used_bytes) for g in gpus] == [
        (0, texts.DCGM_GPU0_FREE_MIB * MIB, texts.DCGM_GPU0_USED_MIB * MIB),
        (1, texts.DCGM_GPU1_FREE_MIB * MIB, texts.DCGM_GPU1_USED_MIB * MIB),
    ]


def test_dcgm_exporter_without_framebuffer_gauges_is_an_error(vllm_double: OpenAIDouble) -> None:
    with pytest.raises(EngineError, match="DCGM_FI_DEV_FB_FREE"):
        read_dcgm_gpus(f"{vllm_double.url}/metrics")


def test_a_server_without_v1_models_is_named_as_not_openai(dcgm_double: OpenAIDouble) -> None:
    engine = OpenAICompatEngine(dcgm_double.url)
    status = engine.status()
    engine.close()

    assert not status.reachable and "has no /v1/models" in status.detail


def test_unreachable_server_is_unavailable(refused_ollama_host: str) -> None:
    engine = OpenAICompatEngine(refused_ollama_host)

    assert not engine.status().reachable
    with pytest.raises(EngineUnavailable, match="not reachable"):
        _run(engine)
    with pytest.raises(EngineUnavailable):
        read_dcgm_gpus(refused_ollama_host)
    assert engine.server_facts().kind == "openai"  # nothing answered: no facts, no exception
    engine.close()
