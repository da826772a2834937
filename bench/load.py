"""Many staff at once on the real app: errors, lost messages, queue wait vs the app's own path,
fairness, the app's CPU and memory, against the engine double called directly in the same run.

    .venv/bin/python -m bench.load            # 10, 50, 100, 200 people and the greedy case
    .venv/bin/python -m bench.load --quick    # 10 and 50 people and the greedy case

The real app (`python app.py --engine ollama`) runs over an engine double that speaks Ollama's
protocol and streams a scripted reply (--reply-tokens words at --rate tokens/s per stream) in
--slots parallel slots (HEARTH_ENGINE_SLOTS = OLLAMA_NUM_PARALLEL = slots), in its own process;
no llama.cpp is in the loop. Each simulated person is a staff account made before the app
starts, signed in with its own cookie session, and sends one question at once with the others
through the Chat tab's `chat_send` event, reading the updates from the SSE stream as the page
does, from a tab whose page was opened before the run (Gradio sets up a session on its first
event). On 2+ cores the app runs on core 1, and the simulated people and the engine double on
core 0 (--no-pin: anywhere), as browsers and a GPU server on other machines would. Each size
runs twice: everyone in the same instant (a stress test), and arriving at random over
--spread seconds (a Poisson process, seeded: people arrive as they do, some close together).
In the greedy case one person sends --burst questions at once (from as many tabs, first)
among the others. Every run is bounded: one turn per person, and a time
limit per run past which an unanswered turn counts as an error.

Figures (`name: value`; seconds since the question was sent, as the client saw them):
- requests, served, errors, busy replies (the "busy: N people ahead" sentence), per-user
  refusals (the greedy person's turns over HEARTH_MAX_WAITING_PER_USER), lost messages (an
  acknowledged question, i.e. its reply began, without its question or reply row in the
  database), incomplete replies, stray rows (rows of a turn the person was told was refused);
- time to first token p50/p95, split into queue wait (from the first "in line" notice to the
  reply starting, as the page sees it; the server's hearth_chat_queue_wait_seconds beside it),
  the engine's own first token (stored with each reply by the app's Ollama client) and the
  app's own path (the rest: sign-in check, validation, model list, limits, line, commit, Gradio,
  SSE);
- per-person reply tokens/s, Jain's fairness index over the reply tokens each person had
  received when the last non-greedy reply ended (greedy case), peak queue depth (/metrics
  scraped every 0.5 s), app CPU % of one core, peak RSS and threads (psutil on the app's pid);
- the baseline: the turns the app served, sent straight to the double with the same
  concurrency (Ollama's own queueing: first come, first served), and the app/baseline ratios;
- after each all-at-once run, the floors (bench.load_floor): as many people sending at once to
  a bare server on the app's core that answers with one event, and to a Gradio app there with
  Hearth's Blocks and trims and one turn-shaped event; the app path's ratio to each;
- the targets, each with the figures it was judged on: the app path's at up to 100 people
  arriving at random (the issue's "100 concurrent chats"); the same-instant runs print beside
  their floors, as a stress test, since there even the bare server's p95 grows with the burst.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.cores import describe, pin_apart
from bench.load_floor import report_floor
from bench.load_report import (
    APP_PATH_TARGET_MS,
    Stored,
    app_limits,
    app_paths_ms,
    baseline_figures,
    check_store,
    fairness,
    fmt,
    metrics_delta,
    print_ceiling,
    quantiles,
    stream_rates,
    targets,
    ttfts,
)
from bench.load_rig import (
    EngineDouble,
    Sampler,
    app_process,
    create_staff,
    new_session,
    read_metrics,
    sign_in,
)
from bench.load_turns import TurnResult, direct_turn, page_turn, run_all
from tests.support.app_process import AppProcess
from tests.support.gradio_http import GradioHTTP
from tests.support.ollama_server import BUNDLED_NAME
from tests.support.scripted_ollama import numbered_words

GREEDY = "greedy"
# Figures that are whole numbers; every other one prints with three decimals.
COUNTS = frozenset({
    "requests", "served", "errors", "busy_replies", "per_user_refusals", "lost_messages",
    "incomplete_replies", "stray_rows", "server_queue_wait_turns", "peak_queue_depth",
    "app_threads_peak", "baseline_requests", "baseline_errors", "app_path_turns",
    "app_path_turns_over_target",
})  # fmt: skip
WARMUP = "warmup"  # one turn before the runs: the app's first-call costs are not what we measure


@dataclass(frozen=True)
class Scenario:
    name: str
    users: int
    burst: int = 0  # the greedy person's questions sent at once; 0: nobody is greedy
    spread_s: float = 0.0  # 0: everyone sends at once; else arriving at random over this long

    def send_offsets_s(self) -> list[float]:
        """When each job sends, in seconds after the run's start, in the order of jobs().

        With a spread, people arrive as they do: at random, independently, at users/spread_s a
        second on average (a Poisson process with that many arrivals in the window: sorted
        uniform times), so some arrive close together; seeded by the run's name, so a run is
        the same every time."""
        jobs = len(self.jobs())
        if not self.spread_s:
            return [0.0] * jobs
        chance = random.Random(self.name)
        return sorted(chance.uniform(0.0, self.spread_s) for _ in range(jobs))

    def people(self) -> list[str]:
        staff = [f"staff{i:03d}" for i in range(1, self.users + 1 - bool(self.burst))]
        return [GREEDY, *staff] if self.burst else staff

    def jobs(self) -> list[tuple[str, str]]:
        """(person, question) in the order they are sent: the greedy person's burst first."""
        greedy = [(GREEDY, f"{self.name} {GREEDY} q{k}") for k in range(self.burst)]
        staff = [(p, f"{self.name} {p} q0") for p in self.people() if p != GREEDY]
        return greedy + staff


@dataclass(frozen=True)
class LoadConfig:
    slots: int = 4
    max_waiting: int = 64
    tokens_per_s: float = 40.0
    reply_tokens: int = 60
    baseline: bool = True
    app_prefix: tuple[str, ...] = ()  # e.g. taskset: the app on its own core (bench.cores)

    @property
    def turn_s(self) -> float:
        return self.reply_tokens / self.tokens_per_s

    def time_bound_s(self, requests: int) -> float:
        """The most a run may take: three times its turns back to back in every slot, + 60 s."""
        return 60 + 3 * math.ceil(requests / self.slots) * self.turn_s


@dataclass(frozen=True)
class ScenarioReport:
    scenario: Scenario
    turns: tuple[TurnResult, ...]
    stored: Stored
    baseline: tuple[TurnResult, ...]
    wall_s: float
    peak_depth: float
    cpu_pct: float
    cpu_s: float
    load_1m: float  # the host's load average as the run began (other work on the machine)
    peak_rss_bytes: int
    peak_threads: int
    server_wait: tuple[float, float, float]  # waited turns, mean s, p95 bucket bound s

    def count(self, outcome: str) -> int:
        return sum(t.outcome == outcome for t in self.turns)


@dataclass
class Rig:
    config: LoadConfig
    app: AppProcess
    double_url: str
    db_path: Path
    sessions: dict[str, GradioHTTP]
    fn_index: int = field(init=False)

    def __post_init__(self) -> None:
        self.fn_index = next(iter(self.sessions.values())).fn_index("chat_send")


@contextmanager
def load_rig(config: LoadConfig, scenarios: Sequence[Scenario], workdir: Path) -> Iterator[Rig]:
    """The double, the accounts every scenario needs, the app, and a session per person."""
    names = sorted({WARMUP, *(p for s in scenarios for p in s.people())})
    data_dir = workdir / "data"
    create_staff(data_dir / "hearth.db", names)
    reply = numbered_words(config.reply_tokens)
    with (
        EngineDouble(reply, config.tokens_per_s, config.slots) as double,
        app_process(
            data_dir, double.url, config.slots, config.max_waiting, {}, list(config.app_prefix)
        ) as app,
    ):
        sessions = sign_in(app.url, names)
        try:
            yield Rig(config, app, double.url, data_dir / "hearth.db", sessions)
        finally:
            for session in sessions.values():
                session.close()


def chat_data(question: str) -> list[object]:
    """chat_send's inputs: message, conversation (new), history, model, system, temp, ctx, max,
    and the sidebar's page (a gr.State: the server keeps it, the page sends null)."""
    return [question, None, [], BUNDLED_NAME, "", 0.3, 2048, 0, None]


def open_tabs(rig: Rig, tabs: dict[tuple[str, str], str]) -> None:
    """Open each tab's page before the run, as a browser does before anyone types: Gradio
    sets up a session's state on its first event (tens of ms of CPU with this UI), which
    belongs to opening the page, not to the turn."""
    header = next(iter(rig.sessions.values())).fn_index("refresh_header")

    def open_one(job: tuple[str, str]) -> None:
        for _ in rig.sessions[job[0]].stream(header, [], tabs[job]):
            pass

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(open_one, tabs))


def run_scenario(rig: Rig, scenario: Scenario) -> ScenarioReport:
    jobs = scenario.jobs()
    bound_s = rig.config.time_bound_s(len(jobs)) + scenario.spread_s
    tabs = {job: new_session() for job in jobs}  # each question from its own page (a tab)
    open_tabs(rig, tabs)
    scraper = httpx.Client(base_url=rig.app.url, timeout=10, trust_env=False)
    before = read_metrics(scraper)
    assert rig.app.process is not None
    load_1m = os.getloadavg()[0]
    with Sampler(rig.app.url, rig.app.process.pid) as sampler:
        origin = time.perf_counter()

        offsets = dict(zip(jobs, scenario.send_offsets_s(), strict=True))

        def turn(person: str, question: str) -> TurnResult:
            session = tabs[(person, question)]
            data = chat_data(question)
            time.sleep(max(origin + offsets[(person, question)] - time.perf_counter(), 0.0))
            return page_turn(rig.sessions[person], rig.fn_index, session, data, person, origin)

        turns = run_all(jobs, turn, bound_s)
        wall_s = time.perf_counter() - origin
    after = read_metrics(scraper)
    scraper.close()
    stored = check_store(rig.db_path, turns)
    served = [(t.user, t.question) for t in turns if t.outcome == "served"]
    baseline = run_baseline(rig, served, bound_s) if rig.config.baseline else ()
    return ScenarioReport(
        scenario, turns, stored, baseline, wall_s, sampler.peak_depth, sampler.cpu_pct,
        sampler.cpu_s, load_1m, sampler.peak_rss_bytes, sampler.peak_threads,
        metrics_delta(before, after),
    )  # fmt: skip


def run_baseline(rig: Rig, jobs: Sequence[tuple[str, str]], bound_s: float) -> tuple:
    """The same questions straight to the double, all at once (its slots queue the rest)."""
    origin = time.perf_counter()

    def turn(person: str, question: str) -> TurnResult:
        with httpx.Client(base_url=rig.double_url, timeout=120, trust_env=False) as client:
            return direct_turn(client, BUNDLED_NAME, question, person, origin)

    return run_all(jobs, turn, bound_s)


def report(rep: ScenarioReport, emit: Callable[[str], object] = print) -> dict[str, float]:
    """Print a scenario's figures; returns them for the targets."""
    s, turns = rep.scenario, rep.turns
    served = [t for t in turns if t.outcome == "served"]
    ttft_p50, ttft_p95 = quantiles(ttfts(turns))
    wait_p50, wait_p95 = quantiles([t.queue_wait_s for t in served])
    engine_p50, engine_p95 = quantiles(list(rep.stored.engine_ttft_ms.values()))
    paths = app_paths_ms(turns, rep.stored)
    path_p50, path_p95 = quantiles(paths)
    rates = stream_rates(turns)
    waited, server_mean, server_p95 = rep.server_wait
    figures: dict[str, float] = {
        "requests": len(turns),
        "served": len(served),
        "errors": rep.count("error"),
        "busy_replies": rep.count("busy"),
        "per_user_refusals": rep.count("per_user"),
        "lost_messages": rep.stored.lost,
        "incomplete_replies": rep.stored.incomplete,
        "stray_rows": rep.stored.stray,
        "ttft_p50_s": ttft_p50,
        "ttft_p95_s": ttft_p95,
        "queue_wait_p50_s": wait_p50,
        "queue_wait_p95_s": wait_p95,
        "server_queue_wait_turns": waited,
        "server_queue_wait_mean_s": server_mean,
        "server_queue_wait_p95_bucket_le_s": server_p95,
        "engine_ttft_p50_ms": engine_p50,
        "engine_ttft_p95_ms": engine_p95,
        "app_path_p50_ms": path_p50,
        "app_path_p95_ms": path_p95,
        "app_path_turns": len(paths),
        "app_path_turns_over_target": sum(ms > APP_PATH_TARGET_MS for ms in paths),
        "tokens_per_s_per_user_p50": statistics.median(rates) if rates else math.nan,
        "tokens_per_s_per_user_min": min(rates) if rates else math.nan,
        "peak_queue_depth": rep.peak_depth,
        "app_cpu_pct": rep.cpu_pct,
        "app_cpu_ms_per_request": 1000 * rep.cpu_s / len(turns),
        "app_rss_peak_mib": rep.peak_rss_bytes / 2**20,
        "app_threads_peak": rep.peak_threads,
        "wall_s": rep.wall_s,
        "host_load_avg_1m": rep.load_1m,
    }
    if s.burst:
        figures["jain_fairness"], figures["greedy_token_share"] = fairness(turns, GREEDY)
    if rep.baseline:
        figures |= baseline_figures(rep.baseline, GREEDY if s.burst else None, figures)
    for name, value in figures.items():
        shown = f"{value:.0f}" if name in COUNTS else fmt(value)
        emit(f"{s.name}.{name}: {shown}")
    for label, group in (("error", turns), ("baseline error", rep.baseline)):
        for detail in sorted({t.detail for t in group if t.outcome == "error"})[:3]:
            emit(f"# {s.name} {label}: {detail}")
    return figures


def scenarios_for(
    quick: bool, burst: int, sizes: Sequence[int] | None = None, spread_s: float = 0.0
) -> list[Scenario]:
    counts = list(sizes) if sizes else ([10, 50] if quick else [10, 50, 100, 200])
    runs = [Scenario(f"users_{n}", n) for n in counts]
    if spread_s:
        runs += [Scenario(f"users_{n}_over_{spread_s:g}s", n, spread_s=spread_s) for n in counts]
    return [*runs, Scenario("greedy_50", 50, burst)] if burst else runs


def run_load(
    config: LoadConfig, scenarios: Sequence[Scenario], emit: Callable[[str], object] = print
) -> dict[str, dict[str, float]]:
    """Start everything once, run the scenarios one after another, print and return figures."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hearth-load-") as tmp, load_rig(
        config, scenarios, Path(tmp)
    ) as rig:  # fmt: skip
        emit(
            f"# engine double: {config.slots} slots x {config.tokens_per_s:g} tok/s, replies of"
            f" {config.reply_tokens} tokens ({config.turn_s:g} s); app: HEARTH_ENGINE_SLOTS ="
            f" OLLAMA_NUM_PARALLEL = {config.slots}, HEARTH_MAX_WAITING = {config.max_waiting};"
            f" host: {os.cpu_count()} cores ({describe(list(config.app_prefix))})"
        )
        print_ceiling(app_limits(config.slots, config.max_waiting), config.slots, emit)
        warm = run_all([(WARMUP, "warm-up q0")], lambda p, q: page_turn(
            rig.sessions[p], rig.fn_index, new_session(), chat_data(q), p, time.perf_counter()
        ), config.time_bound_s(1))[0]  # fmt: skip
        emit(f"warmup_ttft_s: {fmt(warm.ttft_s or math.nan)}  ({warm.outcome}; not counted)")
        for scenario in scenarios:
            at = f"arriving at random over {scenario.spread_s:g} s" if scenario.spread_s else ""
            who = f"{scenario.users} people, one question each, {at or 'all at once'}"
            if scenario.burst:
                who += f"; '{GREEDY}' sends {scenario.burst} at once, first, from as many tabs"
            emit(f"# {scenario.name}: {who}")
            results[scenario.name] = figures = report(run_scenario(rig, scenario), emit)
            if not (scenario.spread_s or scenario.burst):  # everyone at once
                report_floor(config.app_prefix, scenario.name, scenario.users, figures, emit)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 50 people, and greedy")
    parser.add_argument("--users", type=int, nargs="*", help="people per run instead")
    parser.add_argument("--slots", type=int, default=4, help="engine slots (OLLAMA_NUM_PARALLEL)")
    parser.add_argument("--max-waiting", type=int, default=64, help="HEARTH_MAX_WAITING")
    parser.add_argument("--rate", type=float, default=40.0, help="tokens/s per stream")
    parser.add_argument("--reply-tokens", type=int, default=60)
    parser.add_argument("--burst", type=int, default=10, help="greedy questions; 0: no run")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--no-pin", action="store_true",
        help="do not keep the simulated people and the engine double off the app's core",
    )  # fmt: skip
    parser.add_argument(
        "--spread", type=float, default=5.0,
        help="also run each size with its questions arriving at random over this many s",
    )  # fmt: skip
    args = parser.parse_args(argv)
    prefix = () if args.no_pin else tuple(pin_apart())  # before the double and app start
    config = LoadConfig(
        args.slots, args.max_waiting, args.rate, args.reply_tokens, not args.no_baseline, prefix
    )
    started = time.monotonic()
    results = run_load(config, scenarios_for(args.quick, args.burst, args.users, args.spread))
    targets(results)
    print(f"bench_wall_s: {time.monotonic() - started:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
