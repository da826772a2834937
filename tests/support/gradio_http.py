"""Talk to a running Gradio app the way its browser page does: cookie login, queue/join, SSE.

gradio_client polls its message queue every 50 ms; a browser's EventSource sees each
server-sent event as it arrives. This client reads the SSE stream directly, so timings are
what a browser gets, and it can call any event by fn_index (private ones included), which
the authorization tests need.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class GradioHTTP:
    url: str
    username: str | None = None
    password: str | None = None
    local_address: str | None = None  # e.g. "127.0.0.2": another person at another address
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        transport = httpx.HTTPTransport(local_address=self.local_address)
        self.client = httpx.Client(
            base_url=self.url, timeout=120, trust_env=False, transport=transport
        )
        if self.username is not None:
            response = self.client.post(
                "/login", data={"username": self.username, "password": self.password or ""}
            )
            if response.status_code != 200:
                raise PermissionError(f"login as {self.username} failed: {response.status_code}")

    def close(self) -> None:
        self.client.close()

    def config(self) -> dict[str, Any]:
        response = self.client.get("/config")
        response.raise_for_status()
        return response.json()

    def fn_index(self, api_name: str) -> int:
        for dependency in self.config()["dependencies"]:
            if dependency.get("api_name") == api_name:
                return dependency["id"]
        raise KeyError(api_name)

    def stream(
        self, fn_index: int, data: list[Any], session_hash: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Join the queue and yield each SSE message for this event as it arrives.

        Without session_hash each call is a fresh page session; a browser tab keeps one.
        """
        session = session_hash or secrets.token_hex(6)
        body = {"data": data, "fn_index": fn_index, "session_hash": session,
                "event_data": None, "trigger_id": None}  # fmt: skip
        joined = self.client.post("/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            yield {"msg": "rejected", "status_code": joined.status_code, "body": joined.text}
            return
        with self.client.stream("GET", "/gradio_api/queue/data",
                                params={"session_hash": session}) as response:  # fmt: skip
            if response.status_code != 200:
                yield {"msg": "rejected", "status_code": response.status_code}
                return
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                yield message
                if message.get("msg") in ("process_completed", "close_stream"):
                    return

    def call(self, fn_index: int, data: list[Any]) -> dict[str, Any]:
        """Run an event to completion; returns the last message (process_completed or a refusal)."""
        last: dict[str, Any] = {}
        for message in self.stream(fn_index, data):
            last = message
            if message.get("msg") in ("process_completed", "rejected"):
                break
        return last


def timed_stream(
    http: GradioHTTP, fn_index: int, data: list[Any], session_hash: str | None = None
) -> list[float]:
    """Seconds since the request at which each generating/completed update arrived."""
    start = time.perf_counter()
    marks = []
    for message in http.stream(fn_index, data, session_hash):
        if message.get("msg") in ("process_generating", "process_completed"):
            marks.append(time.perf_counter() - start)
    return marks
