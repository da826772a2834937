"""OpenAICompatEngine against a REAL OpenAI-compatible server: `python -m llama_cpp.server`.

It serves the bundled SmolLM2 GGUF as smollm2:135m. It sends no usage in its streams (Hearth
counts), answers any model name with its own model (Hearth refuses unlisted names first), and
dies mid-reply when killed. What the model says is never asserted.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineUnavailable,
    ModelFactsUnavailable,
    ModelNotFound,
)
from backend.engines.openai_compat import OpenAICompatEngine
from tests.support.llama_cpp_server import LlamaCppServer

ALIAS = "smollm2:135m"
FRANCE = [ChatMessage("user", "What is the capital of France?")]
SHORT = ChatOptions(temperature=0.0, num_predict=12, seed=1)
COUNTING = [ChatMessage("user", "Count from 1 to 300, one number per line.")]
LONG = ChatOptions(temperature=0.0, num_predict=600, seed=1)


def test_streaming_chat_yields_deltas_then_stats_counted_by_hearth(
    llama_cpp_engine: OpenAICompatEngine, llama_cpp_server: LlamaCppServer
) -> None:
    before = llama_cpp_server.chat_requests_seen()
    items = list(llama_cpp_engine.chat(ALIAS, FRANCE, SHORT))

    deltas = [i for i in items if isinstance(i, ChatDelta)]
    stats = items[-1]
    assert deltas and all(d.text for d in deltas)
    assert all(isinstance(i, ChatDelta) for i in items[:-1])
    assert isinstance(stats, ChatStats)
    assert stats.counted_by == "hearth"  # this server sends no usage, even when asked
    assert stats.reply_tokens == len(deltas)
    assert stats.prompt_tokens is None
    assert stats.done_reason in ("stop", "length")
    assert stats.reply_tokens <= SHORT.num_predict  # max_tokens reached the server
    assert stats.ttft_ms is not None and stats.total_ms is not None
    assert llama_cpp_server.chat_requests_seen() == before + 1


def test_models_lists_the_alias(llama_cpp_engine: OpenAICompatEngine) -> None:
    assert [m.name for m in llama_cpp_engine.list_models()] == [ALIAS]
    assert [m.name for m in llama_cpp_engine.loaded_models()] == [ALIAS]
    status = llama_cpp_engine.status()
    assert status.reachable and ALIAS in status.detail
    with pytest.raises(ModelFactsUnavailable, match=ALIAS):
        llama_cpp_engine.show(ALIAS)


def test_server_facts_of_a_server_without_metrics(llama_cpp_engine: OpenAICompatEngine) -> None:
    facts = llama_cpp_engine.server_facts()
    assert (facts.kind, facts.vllm, facts.llama_cpp) == ("openai", None, None)


def test_unknown_model_is_refused_before_sending(
    llama_cpp_engine: OpenAICompatEngine, llama_cpp_server: LlamaCppServer
) -> None:
    """The server itself would answer with smollm2 under any name."""
    list(llama_cpp_engine.chat(ALIAS, FRANCE, SHORT))  # a chat that is sent shows in the log
    sent = llama_cpp_server.chat_requests_seen()

    with pytest.raises(ModelNotFound, match="llama3:8b") as raised:
        list(llama_cpp_engine.chat("llama3:8b", FRANCE, SHORT))

    assert ALIAS in str(raised.value)
    assert llama_cpp_server.chat_requests_seen() == sent


def test_cancel_closes_the_stream_and_the_server_serves_the_next_chat(
    llama_cpp_engine: OpenAICompatEngine, llama_cpp_server: LlamaCppServer
) -> None:
    cancel = threading.Event()
    items = []
    for item in llama_cpp_engine.chat(ALIAS, COUNTING, LONG, cancel=cancel):
        items.append(item)
        cancel.set()

    assert isinstance(items[-1], ChatStats) and items[-1].done_reason == "cancelled"
    assert items[-1].reply_tokens == len(items) - 1
    assert _wait_for(lambda: "Disconnected from client" in llama_cpp_server.log())
    after = list(llama_cpp_engine.chat(ALIAS, FRANCE, SHORT))
    assert isinstance(after[-1], ChatStats) and after[-1].done_reason in ("stop", "length")


def test_server_killed_mid_stream_ends_the_reply_within_2_s(
    smollm_path: Path, tmp_path: Path
) -> None:
    with LlamaCppServer(smollm_path, tmp_path) as server:
        engine = OpenAICompatEngine(server.url, timeout_s=120)
        partial: list[str] = []
        killed_at = 0.0
        with pytest.raises(EngineUnavailable, match="Lost the connection"):
            for item in engine.chat(ALIAS, COUNTING, LONG):
                assert isinstance(item, ChatDelta), "the reply ended before the kill"
                partial.append(item.text)
                if len(partial) == 1:
                    server.kill()
                    killed_at = time.monotonic()
        ended_after_s = time.monotonic() - killed_at
        engine.close()

    assert partial  # the text before the kill was yielded
    assert ended_after_s < 2.0


def _wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
