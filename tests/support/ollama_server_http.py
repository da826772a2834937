"""TEST FIXTURE: the HTTP side of tests/support/ollama_server.py (routes, streams, Go-style JSON).

Never shipped. Field names, field order, status codes and error texts follow ollama/ollama's
docs/api.md and server/routes.go.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

from backend.engines.base import ChatMessage, ChatOptions, ChatStats
from backend.engines.retry import OLLAMA_BUSY_TEXT
from tests.support.ollama_server_state import (
    BadRequest,
    FakeModel,
    chat_options,
    final_metrics,
    go_json,
    go_time,
    parse_keep_alive,
    show_reply,
)

if TYPE_CHECKING:
    from tests.support.ollama_server import OllamaTestServer

_DISCONNECTED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
LOAD_HOLD_LIMIT_S = 30.0  # a held load goes on by itself after this (a test that forgot it)


class OllamaHTTPServer(ThreadingHTTPServer):
    """One thread per connection; a client that hangs up is normal here, not an error."""

    daemon_threads = True
    # Go listens with the system's backlog; socketserver's default of 5 drops connections
    # when a benchmark opens dozens at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: OllamaTestServer) -> None:
        super().__init__(address, OllamaHandler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class OllamaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as Go's net/http
    # Go sets TCP_NODELAY on every connection; without it, headers and body written apart
    # wait ~40 ms for the client's delayed ACK (Nagle), a delay real Ollama does not have.
    disable_nagle_algorithm = True
    server: OllamaHTTPServer
    streaming = False  # the 200 and its headers went out: errors must travel in the stream

    @property
    def fake(self) -> OllamaTestServer:
        return self.server.fake

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not access logs

    def send_response(self, code: int, message: str | None = None) -> None:
        self.send_response_only(code, message)  # Go sends no Server header
        self.send_header("Date", self.date_time_string())

    # -- routing -------------------------------------------------------------------------

    ROUTES: ClassVar[dict[str, dict[str, str]]] = {
        "/": {"GET": "root", "HEAD": "root"},
        "/api/version": {"GET": "version", "HEAD": "version"},
        "/api/tags": {"GET": "tags", "HEAD": "tags"},
        "/api/ps": {"GET": "ps"},
        "/api/show": {"POST": "show"},
        "/api/chat": {"POST": "chat"},
        "/api/generate": {"POST": "generate"},
        "/api/pull": {"POST": "pull"},
        "/api/delete": {"DELETE": "delete"},
    }

    def do_GET(self) -> None:
        self._route()

    do_HEAD = do_POST = do_DELETE = do_GET

    def _route(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keep-alive: drain
        methods = self.ROUTES.get(self.path.split("?", 1)[0])
        if methods is None:
            self._send_text(404, "404 page not found")
            return
        if self.command not in methods:
            self._send_text(405, "405 method not allowed")
            return
        self.streaming = False
        try:
            body = _parse_body(raw) if self.command in ("POST", "DELETE") else {}
            getattr(self, f"_api_{methods[self.command]}")(body)
        except BadRequest as exc:
            self._send_json(400, {"error": str(exc)})
        except _DISCONNECTED:
            self.close_connection = True
        except Exception as exc:
            self._error(str(exc))

    # -- writing -------------------------------------------------------------------------

    def _send_text(self, status: int, text: str) -> None:
        self._send_bytes(status, text.encode(), "text/plain; charset=utf-8")

    def _send_json(self, status: int, value: Any) -> None:
        self._send_bytes(status, go_json(value), "application/json; charset=utf-8")

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _start_stream(self) -> None:
        self.streaming = True
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _stream_line(self, value: Any) -> bool:
        """Write one NDJSON line as one HTTP chunk; False once the client has gone."""
        line = go_json(value) + b"\n"
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        except _DISCONNECTED:
            self.close_connection = True
            return False
        return True

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except _DISCONNECTED:
            self.close_connection = True

    def _error(self, text: str, status: int = 500) -> None:
        """As Ollama: a status and JSON body before the stream began, one more line after."""
        if self.streaming:
            self._stream_line({"error": text})
            self._end_stream()
        else:
            self._send_json(status, {"error": text})

    def _not_found(self, name: str) -> None:
        self._send_json(404, {"error": f"model '{name}' not found"})

    # -- endpoints -----------------------------------------------------------------------

    def _api_root(self, body: dict[str, Any]) -> None:
        self._send_text(200, "Ollama is running")

    def _api_version(self, body: dict[str, Any]) -> None:
        self._send_json(200, {"version": self.fake.version})

    def _api_tags(self, body: dict[str, Any]) -> None:
        models = sorted(self.fake.state.all_models(), key=lambda m: m.modified_at)
        entries = [
            {
                "name": m.name,
                "model": m.name,
                "modified_at": go_time(m.modified_at),
                "size": m.size_bytes,
                "digest": m.digest,
                "details": self.fake.details(m),
            }
            for m in reversed(models)  # most recently modified first
        ]
        self._send_json(200, {"models": entries})

    def _api_ps(self, body: dict[str, Any]) -> None:
        entries = []
        for loaded in self.fake.state.running():
            model = self.fake.state.find(loaded.name)
            if model is None:
                continue
            entries.append(
                {
                    "name": model.name,
                    "model": model.name,
                    "size": loaded.size_bytes,
                    "digest": model.digest,
                    "details": self.fake.details(model),
                    "expires_at": go_time(loaded.expires_at),
                    "size_vram": loaded.vram_bytes,
                    "context_length": loaded.num_ctx,
                }
            )
        self._send_json(200, {"models": entries})

    def _api_show(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise BadRequest("model is required")
        model = self.fake.state.find(name)
        if model is None:
            self._not_found(name)
            return
        verbose = body.get("verbose") is True
        self._send_json(200, show_reply(model, self.fake.details(model), self.fake.facts, verbose))

    def _api_delete(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not self.fake.state.remove(name):
            self._not_found(name)
            return
        self._send_bytes(200, b"", "text/plain; charset=utf-8")

    def _api_generate(self, body: dict[str, Any]) -> None:
        prompt = str(body.get("prompt") or "")
        messages = [{"role": "user", "content": prompt}] if prompt else []
        if prompt and body.get("system"):
            messages.insert(0, {"role": "system", "content": body["system"]})
        self._inference(body, messages, chat=False)

    def _api_chat(self, body: dict[str, Any]) -> None:
        self._inference(body, list(body.get("messages") or []), chat=True)

    def _reply(self, model: str, chat: bool, text: str, done: bool, **final: Any) -> dict:
        """A ChatResponse or GenerateResponse, fields in Go's struct order, omitempty honoured."""
        head: dict[str, Any] = {"model": model, "created_at": go_time(datetime.now(UTC))}
        if chat:
            head["message"] = {"role": "assistant", "content": text}
            if final.get("done_reason"):
                head["done_reason"] = final.pop("done_reason")
            head["done"] = done
        else:
            head |= {"response": text, "done": done}
            if final.get("done_reason"):
                head["done_reason"] = final.pop("done_reason")
        return head | {key: value for key, value in final.items() if value}

    def _inference(self, body: dict[str, Any], messages: list[dict], *, chat: bool) -> None:
        name = body.get("model") or ""
        if not name:
            raise BadRequest("model is required")
        keep_alive = parse_keep_alive(body.get("keep_alive"))
        model = self.fake.state.find(name)
        if model is None:
            self._not_found(name)
            return
        if not messages and keep_alive == timedelta(0):
            self.fake.state.unload(name)
            self._send_json(200, self._reply(name, chat, "", True, done_reason="unload"))
            return
        if model.load_error or (messages and self.fake.state.take_busy()):  # routes.go: 503
            self._error(model.load_error or OLLAMA_BUSY_TEXT, 500 if model.load_error else 503)
            return
        options = body.get("options") or {}
        if model.load_hold is not None and not messages:  # a load still in flight, for tests
            self.fake.state.record(loads_held=1)
            model.load_hold.wait(LOAD_HOLD_LIMIT_S)
        self.fake.state.mark_loaded(model, int(options.get("num_ctx") or 4096), keep_alive)
        if not messages:
            self._send_json(200, self._reply(name, chat, "", True, done_reason="load"))
            return
        if chat:
            self.fake.state.record(chat_requests=1)
        _Generation(self, model, name, chat, body.get("stream", True) is not False).run(
            [ChatMessage(m.get("role", "user"), str(m.get("content") or "")) for m in messages],
            chat_options(options),
        )

    def _api_pull(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise BadRequest("model is required")
        _Pull(self, name, body.get("stream", True) is not False).run()


class _Generation:
    """One streamed (or collected) reply, generated by the backend."""

    def __init__(
        self, handler: OllamaHandler, model: FakeModel, name: str, chat: bool, stream: bool
    ) -> None:
        self.handler, self.model, self.name, self.chat, self.stream = (
            handler, model, name, chat, stream,
        )  # fmt: skip
        self.fake = handler.fake

    def run(self, messages: list[ChatMessage], options: ChatOptions) -> None:
        cancel = threading.Event()
        started = time.perf_counter()
        parts: list[str] = []
        stats: ChatStats | None = None
        if self.stream:
            self.handler._start_stream()
        self.fake.state.set_event("chunks_streamed", 0)
        items = iter(self.fake.generator.chat(self.fake.backend_model, messages, options, cancel))
        try:
            for item in items:
                if isinstance(item, ChatStats):
                    stats = item
                    continue
                if self.model.stream_error and len(parts) >= self.model.stream_error_after:
                    self.handler._error(self.model.stream_error)
                    return
                parts.append(item.text)
                if self.stream:
                    if not self.handler._stream_line(self._reply(item.text, False)):
                        cancel.set()
                        self.fake.state.record(chat_disconnects=1)
                        return
                    self.fake.state.record(chunks_streamed=1)
        finally:
            getattr(items, "close", lambda: None)()
        final = final_metrics(stats, started)
        if self.stream:
            self.handler._stream_line(self._reply("", True, **final))
            self.handler._end_stream()
        else:
            self.handler._send_json(200, self._reply("".join(parts), True, **final))

    def _reply(self, text: str, done: bool, **final: Any) -> dict:
        return self.handler._reply(self.name, self.chat, text, done, **final)


class _Pull:
    """/api/pull: manifest, each layer's progress in steps, verify, write, success."""

    def __init__(self, handler: OllamaHandler, name: str, stream: bool) -> None:
        self.handler, self.name, self.stream = handler, name, stream
        self.fake = handler.fake

    def send(self, value: dict[str, Any]) -> bool:
        if not self.stream:
            return True
        if self.handler._stream_line(value):
            return True
        self.fake.state.record(pull_disconnects=1)
        return False

    def run(self) -> None:
        if self.stream:
            self.handler._start_stream()
        tag = self.fake.state.find_tag(self.name)
        if not self.send({"status": "pulling manifest"}):
            return
        if tag is None:
            self.handler._error("pull model manifest: file does not exist")
            return
        cached = self.fake.state.find(tag.name) is not None
        for index, size in enumerate(tag.layer_sizes):
            if not self._layer(tag.layer_digest(index), size, cached):
                return
        for status in ("verifying sha256 digest", "writing manifest"):
            if not self.send({"status": status}):
                return
        self.fake.state.install_from_registry(tag)
        self.fake.state.record(pulls_completed=1)
        if not self.stream:
            self.handler._send_json(200, {"status": "success"})
        elif self.send({"status": "success"}):
            self.handler._end_stream()

    def _layer(self, digest: str, size: int, cached: bool) -> bool:
        progress = {"status": f"pulling {digest[7:19]}", "digest": digest, "total": size}
        if cached:
            return self.send(progress | {"completed": size})
        if not self.send(progress):
            return False
        steps = max(self.fake.pull_steps_per_layer, 1)
        for step in range(1, steps + 1):
            time.sleep(self.fake.pull_step_delay_s)
            if not self.send(progress | {"completed": size * step // steps}):
                return False
        return True


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"invalid character in request body: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("json: cannot unmarshal request body into a request object")
    return body
