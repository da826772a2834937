"""TEST FIXTURE: a loopback protocol double of an OpenAI-compatible server, for tests only.

Never shipped. Written from OpenAI's chat-completions reference and vLLM's OpenAI-compatible
server: SSE `data:` events over chunked HTTP, `stream_options.include_usage` (a last chunk with
`choices: []` and `usage`), `[DONE]`, vLLM's `/v1/models` (`max_model_len`), `/version` and
Prometheus `/metrics`, its error bodies and its API-key check (401 `{"error": "Unauthorized"}`
on /v1 paths). Flavours: "vllm", "llama-server" (`/health`, `/props`, `/slots`, meta in the
model list) and "dcgm" (an NVIDIA dcgm-exporter: `/metrics` only). It covers what the real
llama-cpp-python server in the tests lacks; the reply is canned, not generated.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import openai_texts as texts

REPLY = ("Hello", ",", " world", ".")
PROMPT_TOKENS = 21
HOLD_LIMIT_S = 10.0
_DISCONNECTED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class DoubleControls:
    """What the next chats do; tests set these fields."""

    reply: tuple[str, ...] = REPLY
    usage_supported: bool = True  # False: ignore include_usage, as llama-cpp-python does
    fail_next: tuple[int, Any] | None = None  # (status, JSON body) for the next chat only
    error_after: int | None = None  # send this many deltas, then an error event
    abort_after: int | None = None  # send this many deltas, then drop the connection
    hold_at: int | None = None  # -1: before the headers; n: after n deltas (until released)
    done_without_finish: bool = False  # [DONE] with no finish_reason (an interrupted reply)
    stream_error: str = "CUDA error: an illegal memory access was encountered"
    release: threading.Event = field(default_factory=threading.Event)
    chat_started: threading.Event = field(default_factory=threading.Event)
    client_gone: threading.Event = field(default_factory=threading.Event)


class OpenAIDouble:
    """TEST FIXTURE: start() listens on a free loopback port; `requests` records what came in."""

    def __init__(self, flavour: str = "vllm", *, api_key: str | None = None) -> None:
        self.flavour = flavour
        self.api_key = api_key
        self.controls = DoubleControls()
        self.requests: list[SeenRequest] = []
        self._httpd: _Server | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the OpenAI protocol double is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def chat_requests(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def start(self) -> OpenAIDouble:
        self._httpd = _Server(("127.0.0.1", 0), self)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self.controls.release.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenAIDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def model_list(self) -> dict[str, Any]:
        if self.flavour == "llama-server":
            return texts.LLAMA_SERVER_MODELS
        entry = {
            "id": texts.VLLM_MODEL,
            "object": "model",
            "created": 1735689600,
            "owned_by": "vllm",
            "root": texts.VLLM_MODEL,
            "parent": None,
            "max_model_len": texts.VLLM_MAX_MODEL_LEN,
            "permission": [{"id": "modelperm-1", "object": "model_permission"}],
        }
        return {"object": "list", "data": [entry]}

    def served_ids(self) -> list[str]:
        return [entry["id"] for entry in self.model_list()["data"]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], double: OpenAIDouble) -> None:
        super().__init__(address, _Handler)
        self.double = double

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    do_POST = do_GET

    @property
    def double(self) -> OpenAIDouble:
        return self.server.double

    def _route(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        path = self.path.split("?", 1)[0]
        self.double.requests.append(SeenRequest(self.command, path, dict(self.headers), body))
        handler = self._routes().get((self.command, path))
        if handler is None:
            self._send_json(404, {"detail": "Not Found"})
        elif path.startswith("/v1/") and not self._authorised():
            self._send_json(401, {"error": "Unauthorized"})
        else:
            try:
                handler(body)
            except _DISCONNECTED:
                self.close_connection = True

    def _routes(self) -> dict[tuple[str, str], Any]:
        if self.double.flavour == "dcgm":
            return {("GET", "/metrics"): lambda _: self._send_text(texts.DCGM_METRICS)}
        routes = {
            ("GET", "/v1/models"): lambda _: self._send_json(200, self.double.model_list()),
            ("POST", "/v1/chat/completions"): self._chat,
        }
        if self.double.flavour == "vllm":
            routes[("GET", "/metrics")] = lambda _: self._send_text(texts.VLLM_METRICS)
            routes[("GET", "/version")] = lambda _: self._send_json(
                200, {"version": texts.VLLM_VERSION}
            )
            routes[("GET", "/health")] = lambda _: self._send_text("")
        else:
            routes[("GET", "/health")] = lambda _: self._send_json(
                200, texts.LLAMA_SERVER_HEALTH_OK
            )
            routes[("GET", "/props")] = lambda _: self._send_json(200, texts.LLAMA_SERVER_PROPS)
            routes[("GET", "/slots")] = lambda _: self._send_json(200, texts.LLAMA_SERVER_SLOTS)
        return routes

    def _authorised(self) -> bool:
        key = self.double.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    # -- chat ----------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        controls = self.double.controls
        controls.chat_started.set()
        failure, controls.fail_next = controls.fail_next, None
        if failure is not None:
            self._send_json(*failure)
            return
        if body.get("model") not in self.double.served_ids():
            message = f"The model `{body.get('model')}` does not exist."
            error = {"message": message, "type": "NotFoundError", "param": "model", "code": 404}
            self._send_json(404, {"error": error})
            return
        if controls.hold_at == -1 and not self._hold():
            return
        self._start_stream()
        stream = _ChatStream(body, self._event)
        stream.first()
        for index, text in enumerate(controls.reply):
            if controls.hold_at == index and not self._hold():
                return
            if controls.abort_after == index:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # as a killed process: no last chunk
                self.close_connection = True
                return
            if controls.error_after == index:
                error = {"message": controls.stream_error, "type": "InternalServerError"}
                self._event({"error": error | {"code": 500}})
                self._event_raw("[DONE]")
                return self._end_stream()
            stream.delta(text)
        stream.finish(None if controls.done_without_finish else "stop")
        if controls.usage_supported and (body.get("stream_options") or {}).get("include_usage"):
            stream.usage(PROMPT_TOKENS, len(controls.reply))
        self._event_raw("[DONE]")
        self._end_stream()

    def _hold(self) -> bool:
        """Wait until the test releases the reply; False when the client hung up meanwhile."""
        controls = self.double.controls
        deadline = time.monotonic() + HOLD_LIMIT_S
        while not controls.release.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.02)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                controls.client_gone.set()
                self.close_connection = True
                return False
        return True

    # -- writing -------------------------------------------------------------------------

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send_text(self, text: str) -> None:
        self._send(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, value: dict[str, Any]) -> None:
        self._event_raw(json.dumps(value, separators=(",", ":")))

    def _event_raw(self, data: str) -> None:
        event = f"data: {data}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _ChatStream:
    """The chunks of one vLLM reply (`chat.completion.chunk` objects)."""

    def __init__(self, body: dict[str, Any], send: Any) -> None:
        self._send = send
        self._head = {
            "id": "chatcmpl-9b1f0c7e2d",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        self._send(self._head | {"choices": [choice]})

    def first(self) -> None:
        self._choice({"role": "assistant", "content": ""})

    def delta(self, text: str) -> None:
        self._choice({"content": text})

    def finish(self, reason: str | None) -> None:
        self._choice({"content": ""}, reason)

    def usage(self, prompt: int, completion: int) -> None:
        total = prompt + completion
        usage = {"prompt_tokens": prompt, "total_tokens": total, "completion_tokens": completion}
        self._send(self._head | {"choices": [], "usage": usage})
