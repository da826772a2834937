"""Pytest fixtures: the OpenAI protocol double (a TEST FIXTURE) and a real llama-cpp-python server.

Listed in tests/conftest.py's pytest_plugins.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.engines.openai_compat import OpenAICompatEngine
from tests.support.llama_cpp_server import LlamaCppServer
from tests.support.openai_double import OpenAIDouble

DOUBLE_API_KEY = "sk-hearth-test-4d2c9a"


@pytest.fixture
def vllm_double() -> Iterator[OpenAIDouble]:
    """A vLLM-flavoured double that wants DOUBLE_API_KEY on /v1 paths."""
    with OpenAIDouble("vllm", api_key=DOUBLE_API_KEY) as double:
        yield double


@pytest.fixture
def vllm_engine(vllm_double: OpenAIDouble) -> Iterator[OpenAICompatEngine]:
    engine = OpenAICompatEngine(
        f"{vllm_double.url}/v1", name="vllm-box", api_key=DOUBLE_API_KEY, timeout_s=30
    )
    yield engine
    engine.close()


@pytest.fixture
def dcgm_double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble("dcgm") as double:
        yield double


@pytest.fixture(scope="module")
def llama_cpp_server(
    tmp_path_factory: pytest.TempPathFactory, smollm_path
) -> Iterator[LlamaCppServer]:
    """`python -m llama_cpp.server` serving the bundled SmolLM2 as smollm2:135m, one per module."""
    with LlamaCppServer(smollm_path, tmp_path_factory.mktemp("llama-cpp-server")) as server:
        yield server


@pytest.fixture
def llama_cpp_engine(llama_cpp_server: LlamaCppServer) -> Iterator[OpenAICompatEngine]:
    engine = OpenAICompatEngine(llama_cpp_server.url, name="llama-cpp-python", timeout_s=120)
    yield engine
    engine.close()
