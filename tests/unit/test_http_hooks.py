"""Engine clients' httpx responses are freed when dropped, not left for the cycle collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from backend.engines.http_hooks import response_hooks
from tests.support.cyclic_garbage import left_in_cycles

BODY = b'{"a": 1}\n{"b": 2}\n'


class _Lines(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections, as httpx's pool uses them

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lines)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _requests(client: httpx.Client, url: str) -> None:
    for _ in range(5):
        assert client.get(f"{url}/api/tags").text == BODY.decode()
        with client.stream("POST", f"{url}/api/chat", json={}) as response:
            assert list(response.iter_lines()) == ['{"a": 1}', '{"b": 2}']


@pytest.mark.parametrize("hooks,left", [({}, 10), (response_hooks(), 0)])
def test_finished_responses_leave_no_cycle_with_the_hook(url: str, hooks: dict, left: int) -> None:
    with httpx.Client(event_hooks=hooks) as client:
        _requests(client, url)  # the connection is open before counting
        assert left_in_cycles(lambda: _requests(client, url), httpx.Response) == left


def test_a_closed_response_still_knows_how_long_it_took(url: str) -> None:
    with httpx.Client(event_hooks=response_hooks()) as client:
        with client.stream("GET", url) as response:
            response.read()
        assert response.elapsed.total_seconds() >= 0  # set on close, through the weak link
        assert client.get(url).elapsed.total_seconds() >= 0
