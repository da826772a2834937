"""Each engine's finished HTTP responses are freed at once, not left in a cycle for the
collector: httpx ties a response and its body stream together, and the engines' clients
unbind them (backend.engines.http_hooks), so a turn's requests add nothing to the full
collections that pause the app."""

from __future__ import annotations

import httpx

from backend.engines.base import ChatMessage, ChatOptions
from backend.engines.ollama import OllamaEngine
from backend.engines.openai_compat import OpenAICompatEngine
from tests.support import openai_texts as texts
from tests.support.cyclic_garbage import left_in_cycles
from tests.support.ollama_server import BUNDLED_NAME

HELLO = [ChatMessage("user", "Say hello.")]
OPTIONS = ChatOptions(temperature=0.0, num_ctx=2048, num_predict=8)


def test_ollama_requests_leave_no_response_for_the_cycle_collector(
    ollama_engine: OllamaEngine,
) -> None:
    def turn() -> None:
        list(ollama_engine.chat(BUNDLED_NAME, HELLO, OPTIONS))
        ollama_engine.list_models()

    turn()  # connections opened first
    assert left_in_cycles(turn, httpx.Response) == 0


def test_openai_compatible_requests_leave_no_response_for_the_cycle_collector(
    vllm_engine: OpenAICompatEngine,
) -> None:
    def turn() -> None:
        list(vllm_engine.chat(texts.VLLM_MODEL, HELLO, OPTIONS))
        vllm_engine.list_models()

    turn()
    assert left_in_cycles(turn, httpx.Response) == 0
