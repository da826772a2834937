"""The floor under the load bench's app path: the same number of people sending at once, each
from its own open connection, to a bare server on the app's core that answers with one SSE
event at once (no sign-in, no Gradio, no database, no engine). Time to that first event is
the least any Python server on that core can show the bench's clients.

    .venv/bin/python -m bench.load_floor --users 10 50 100    # on its own
    (bench.load runs it after each all-at-once run and prints the ratio)
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


def serve(port: int) -> None:
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


@contextmanager
def floor_server(prefix: Sequence[str]) -> Iterator[str]:
    """The bare server, started with the app's command prefix (its core); yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [*prefix, sys.executable, "-m", "bench.load_floor", "--serve", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{url}/turn", content=b"{}", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the floor server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def first_event_ms(url: str, users: int) -> list[float]:
    """Each person's time from sending to the first event, all sending at one instant."""
    clients = [httpx.Client(base_url=url, timeout=60, trust_env=False) for _ in range(users)]
    for client in clients:  # connections open before, as the tabs' are
        client.post("/turn", content=b"{}").raise_for_status()
    start = threading.Barrier(users)
    times: list[float | None] = [None] * users

    def send(index: int) -> None:
        start.wait()
        sent = time.perf_counter()
        with clients[index].stream("POST", "/turn", content=b'{"data": ["question"]}') as reply:
            for line in reply.iter_lines():
                if line:
                    times[index] = (time.perf_counter() - sent) * 1000
                    break

    threads = [threading.Thread(target=send, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    answered = [ms for ms in times if ms is not None]
    if len(answered) < users:
        raise RuntimeError(f"the floor server answered {len(answered)} of {users} at once")
    return answered


def report_floor(
    url: str, name: str, users: int, figures: dict[str, float], emit: Callable[[str], object]
) -> None:
    """Measure the floor for `users` at once; print it beside the run's app path (figures)."""
    p50, p95 = quantiles(first_event_ms(url, users))
    figures["floor_first_event_p95_ms"] = p95
    emit(f"{name}.floor_first_event_p50_ms: {fmt(p50)}")
    emit(f"{name}.floor_first_event_p95_ms: {fmt(p95)}  (a bare server on the app's core)")
    emit(f"{name}.ratio_app_path_p95_over_floor: {fmt(figures['app_path_p95_ms'] / p95)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="*", default=[10, 50, 100])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    with floor_server(pin_apart()) as url:
        for users in args.users:
            p50, p95 = quantiles(first_event_ms(url, users))
            print(f"users_{users}.floor_first_event_p50_ms: {fmt(p50)}")
            print(f"users_{users}.floor_first_event_p95_ms: {fmt(p95)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
