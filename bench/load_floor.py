"""The floors under the load bench's app path: the same number of people sending at once, each
from its own open connection, to a server on the app's core that answers at once.

- bare: a Starlette route that answers with one SSE event (no sign-in, no Gradio, no
  database, no engine): the least any Python server on that core can show the bench's clients.
- gradio: a Gradio app with Hearth's own Blocks and per-event trims and one event shaped like
  a chat turn up to its first update (a sync generator: text in, one notice out), sent and
  read as the page does (queue/join, then the session's SSE stream). No sign-in, no database,
  no line, no engine: the least a turn sent through Gradio's queue can cost on that core.

    .venv/bin/python -m bench.load_floor --users 10 50 100    # on its own
    (bench.load runs both after each all-at-once run and prints the ratios)
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx

from bench.cores import pin_apart
from bench.load_report import fmt, quantiles
from tests.support.gradio_http import GradioHTTP

KINDS = ("bare", "gradio")
GRADIO_EVENT = "floor_turn"


def serve_bare(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def turn(request: Request) -> StreamingResponse:
        await request.body()

        async def events() -> AsyncIterator[bytes]:
            yield b'data: {"msg": "in line"}\n\n'

        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/turn", turn, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=120)


def serve_gradio(port: int) -> None:
    """Hearth's Blocks with Hearth's trims, as app.py sets them up, and one turn-shaped event."""
    import gradio as gr

    from backend.ops.lifecycle import settle_garbage_collector, wait_for_stop_signal
    from ui.errors import HearthBlocks
    from ui.gradio_trims import trim_gradio_per_event_work

    def turn(question: str) -> Iterator[str]:
        yield f"1st in line · {len(question)}"

    trim_gradio_per_event_work()
    with HearthBlocks() as demo:
        box = gr.Textbox()
        notice = gr.Markdown()
        box.submit(turn, box, notice, api_name=GRADIO_EVENT, concurrency_limit=None)
    demo.queue(max_size=1000)
    demo.launch(server_name="127.0.0.1", server_port=port, max_threads=1000, ssr_mode=False,
                quiet=True, prevent_thread_lock=True)  # fmt: skip
    settle_garbage_collector()
    wait_for_stop_signal()
    demo.close()


@contextmanager
def floor_server(prefix: Sequence[str], kind: str = "bare") -> Iterator[str]:
    """A floor server of this kind, started with the app's command prefix (its core); yields
    its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [*prefix, sys.executable, "-m", "bench.load_floor", "--serve", str(port), kind]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if kind == "bare":
                    httpx.post(f"{url}/turn", content=b"{}", timeout=1).raise_for_status()
                else:
                    httpx.get(f"{url}/config", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {kind} floor server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def at_once(users: int, send: Callable[[int], float | None]) -> list[float]:
    """Each person's ms from sending to the first event (send(i)), all sending at one instant."""
    start = threading.Barrier(users)
    times: list[float | None] = [None] * users

    def person(index: int) -> None:
        start.wait()
        times[index] = send(index)

    threads = [threading.Thread(target=person, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = [ms for ms in times if ms is not None]
    if len(answered) < users:
        raise RuntimeError(f"the floor server answered {len(answered)} of {users} at once")
    return answered


def bare_first_event_ms(url: str, users: int) -> list[float]:
    clients = [httpx.Client(base_url=url, timeout=60, trust_env=False) for _ in range(users)]
    for client in clients:  # connections open before, as the tabs' are
        client.post("/turn", content=b"{}").raise_for_status()

    def send(index: int) -> float | None:
        sent = time.perf_counter()
        with clients[index].stream("POST", "/turn", content=b'{"data": ["question"]}') as reply:
            for line in reply.iter_lines():
                if line:
                    return (time.perf_counter() - sent) * 1000
        return None

    try:
        return at_once(users, send)
    finally:
        for client in clients:
            client.close()


def gradio_first_event_ms(url: str, users: int) -> list[float]:
    tabs = [GradioHTTP(url) for _ in range(users)]
    fn_index = tabs[0].fn_index(GRADIO_EVENT)
    sessions = [f"floor{index:06d}" for index in range(users)]
    for tab, session in zip(tabs, sessions, strict=True):  # Gradio sets a session up on its
        for _ in tab.stream(fn_index, ["warm-up"], session):  # first event, as for the app
            pass

    def send(index: int) -> float | None:
        sent = time.perf_counter()
        for message in tabs[index].stream(fn_index, ["question"], sessions[index]):
            if message.get("msg") in ("process_generating", "process_completed"):
                return (time.perf_counter() - sent) * 1000
        return None

    try:
        return at_once(users, send)
    finally:
        for tab in tabs:
            tab.close()


FIRST_EVENT_MS = {"bare": bare_first_event_ms, "gradio": gradio_first_event_ms}
DESCRIBED = {
    "bare": "a bare server on the app's core",
    "gradio": "one turn-shaped Gradio event, Hearth's Blocks and trims, on the app's core",
}


def report_floor(
    prefix: Sequence[str], name: str, users: int, figures: dict[str, float],
    emit: Callable[[str], object],
) -> None:  # fmt: skip
    """Measure each floor for `users` at once, its server started with the app's command prefix
    for this alone (an idle Gradio server polls its queue every ms); print it beside the run's
    app path (figures)."""
    for kind in KINDS:
        with floor_server(prefix, kind) as url:
            p50, p95 = quantiles(FIRST_EVENT_MS[kind](url, users))
        figures[f"floor_{kind}_first_event_p95_ms"] = p95
        emit(f"{name}.floor_{kind}_first_event_p50_ms: {fmt(p50)}")
        emit(f"{name}.floor_{kind}_first_event_p95_ms: {fmt(p95)}  ({DESCRIBED[kind]})")
        ratio = figures["app_path_p95_ms"] / p95
        emit(f"{name}.ratio_app_path_p95_over_{kind}_floor: {fmt(ratio)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="*", default=[10, 50, 100])
    parser.add_argument("--kinds", nargs="*", choices=KINDS, default=list(KINDS))
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)  # the server: PORT KIND
    args = parser.parse_args(argv)
    if args.serve:
        port, kind = int(args.serve[0]), args.serve[1]
        (serve_bare if kind == "bare" else serve_gradio)(port)
        return 0
    for kind in args.kinds:
        with floor_server(pin_apart(), kind) as url:
            for users in args.users:
                p50, p95 = quantiles(FIRST_EVENT_MS[kind](url, users))
                print(f"users_{users}.floor_{kind}_first_event_p50_ms: {fmt(p50)}")
                print(f"users_{users}.floor_{kind}_first_event_p95_ms: {fmt(p95)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
