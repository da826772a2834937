"""The load benchmark's figures: what the database kept, percentiles, fairness, and the lines
it prints (`name: value`)."""

from __future__ import annotations

import math
import re
import sqlite3
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.fair_line import jain, percentile
from bench.load_rig import Metrics
from bench.load_turns import TurnResult

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stored:
    """What the database says about a run's turns (checked against what the clients saw)."""

    lost: int  # acknowledged questions without their question row or their reply row
    incomplete: int  # reply rows whose status is not complete
    stray: int  # question rows of turns the client was told were refused
    engine_ttft_ms: dict[str, float]  # question -> the engine's own TTFT, as the app stored it


def check_store(db_path: Path, turns: Sequence[TurnResult]) -> Stored:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT conversation_id, role, content, status, ttft_ms FROM messages"
            " ORDER BY conversation_id, id"
        ).fetchall()
    finally:
        conn.close()
    replies: dict[str, tuple[str, float | None] | None] = {}
    for index, (conversation, role, content, _, _) in enumerate(rows):
        if role != "user":
            continue
        after = rows[index + 1] if index + 1 < len(rows) else None
        has_reply = after is not None and after[0] == conversation and after[1] == "assistant"
        replies[content] = (after[3], after[4]) if has_reply and after else None
    lost = incomplete = stray = 0
    ttfts: dict[str, float] = {}
    for turn in turns:
        if not turn.acknowledged:
            stray += turn.question in replies
            continue
        reply = replies.get(turn.question)
        if reply is None:
            lost += 1
            continue
        status, ttft_ms = reply
        incomplete += status != "complete"
        if ttft_ms is not None:
            ttfts[turn.question] = ttft_ms
    return Stored(lost, incomplete, stray, ttfts)


def bucket_quantile(buckets: Sequence[tuple[float, float]], fraction: float) -> float:
    """The upper bound of the histogram bucket that holds this quantile (Prometheus-style)."""
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if total and count >= fraction * total:
            return bound
    return math.nan


def metrics_delta(before: Metrics, after: Metrics) -> tuple[float, float, float]:
    """(turns that waited for a slot, mean wait s, p95 bucket bound s) between two scrapes."""
    count = after.wait_count - before.wait_count
    mean = (after.wait_sum_s - before.wait_sum_s) / count if count else math.nan
    start = dict(before.wait_buckets)
    buckets = [(bound, n - start.get(bound, 0.0)) for bound, n in after.wait_buckets]
    return count, mean, bucket_quantile(buckets, 0.95)


def served_tokens(turns: Sequence[TurnResult], moment: float) -> dict[str, float]:
    """Reply tokens each person had received by `moment` (everyone who asked, 0 if nothing)."""
    tokens: dict[str, float] = {}
    for turn in turns:
        tokens[turn.user] = tokens.get(turn.user, 0.0) + turn.tokens_by(moment)
    return tokens


def fairness(turns: Sequence[TurnResult], greedy: str) -> tuple[float, float]:
    """(Jain's index, the greedy person's share) over reply tokens served until the last other
    person's reply ended: while everyone still wanted a reply."""
    others = [t.done_at for t in turns if t.user != greedy and t.outcome == "served"]
    if not others:
        return math.nan, math.nan
    tokens = served_tokens(turns, max(at for at in others if at is not None))
    total = sum(tokens.values())
    return jain(list(tokens.values())), (tokens.get(greedy, 0.0) / total if total else math.nan)


def quantiles(values: Sequence[float], scale: float = 1.0) -> tuple[float, float]:
    return percentile(list(values), 0.50) * scale, percentile(list(values), 0.95) * scale


def app_paths_ms(turns: Sequence[TurnResult], stored: Stored) -> list[float]:
    """Per served turn: time to first token minus queue wait minus the engine's own TTFT."""
    paths = []
    for turn in turns:
        engine_ms = stored.engine_ttft_ms.get(turn.question)
        if turn.outcome == "served" and turn.ttft_s is not None and engine_ms is not None:
            paths.append((turn.ttft_s - turn.queue_wait_s) * 1000 - engine_ms)
    return paths


def app_limits(slots: int, max_waiting: int) -> dict[str, int]:
    """The app's own sizes, read from app.py and backend/services.py as they are now."""
    from backend.services import CHAT_REFUSAL_ROOM

    source = (ROOT / "app.py").read_text()
    threads = re.search(r"max_threads=services\.chat_concurrency \+ (\d+)", source)
    queue = re.search(r"max_size=services\.chat_concurrency \+ (\d+)", source)
    if threads is None or queue is None:
        raise RuntimeError("app.py no longer sizes max_threads / max_size as this bench reads")
    workers = slots + max_waiting + CHAT_REFUSAL_ROOM
    return {
        "turns_in_line": slots + max_waiting,
        "chat_workers": workers,
        "max_threads": workers + int(threads.group(1)),
        "gradio_queue_max_size": workers + int(queue.group(1)),
        "simultaneous_sends": 2 * workers + int(queue.group(1)),
    }


def print_ceiling(limits: dict[str, int], slots: int, emit: Callable[[str], object]) -> None:
    emit(f"app_ceiling_turns_in_flight: {limits['turns_in_line']}  (slots {slots} + max_waiting;"
         " one more gets 'busy: N people ahead')")  # fmt: skip
    emit(f"app_chat_workers: {limits['chat_workers']}  (services.chat_concurrency = slots +"
         " max_waiting + CHAT_REFUSAL_ROOM)")  # fmt: skip
    emit(f"app_max_threads: {limits['max_threads']}  (app.py: chat_concurrency + room for"
         " other events)")  # fmt: skip
    emit(f"app_ceiling_simultaneous_sends: {limits['simultaneous_sends']}  (chat workers +"
         f" Gradio queue max_size {limits['gradio_queue_max_size']}; beyond it Gradio answers"
         " 'Queue is full', not the busy sentence)")  # fmt: skip
    emit("app_ceiling_why: every turn in the line (waiting or streaming) holds one worker"
         " thread: Gradio runs the sync chat generator's next() in its thread pool, and a"
         " waiting turn blocks there in the fair line's Condition.wait; so turns per process"
         " are bounded by max_threads, and raising HEARTH_MAX_WAITING costs one thread"
         " each")  # fmt: skip


def fmt(value: float, digits: int = 3) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.{digits}f}"


APP_PATH_TARGET_MS = 50
APP_PATH_TARGET_USERS = 100  # the "100 concurrent chats"


def targets(results: dict[str, dict[str, float]], emit: Callable[[str], object] = print) -> None:
    """Issue 14's targets, each with the figures it was judged on.

    The app path is judged where the issue puts it, at up to 100 concurrent chats, with people
    arriving as they do (the runs over a spread: at random, some close together). The runs where
    everyone sends in the same instant are a stress test, printed beside the floors measured in
    the same run, not judged: there a burst is served one request after another on the app's
    core, so even a bare server that does nothing shows the k-th of them k times its own cost.
    """

    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    for name, f in results.items():
        if name.startswith("users_100"):
            ok = f["errors"] == 0 and f["lost_messages"] == 0
            emit(f"target.{name}_no_errors_no_lost: {verdict(ok)}"
                 f"  (errors {f['errors']:.0f}, lost {f['lost_messages']:.0f})")  # fmt: skip
        if name.startswith("users_200"):
            refused = f["busy_replies"] + f["per_user_refusals"]
            ok = f["errors"] == 0 and refused == f["requests"] - f["served"]
            emit(f"target.{name}_over_capacity_busy_not_error: {verdict(ok)}  (busy "
                 f"{refused:.0f} of {f['requests'] - f['served']:.0f} not served, errors "
                 f"{f['errors']:.0f})")  # fmt: skip
        if "jain_fairness" in f:
            ok = f["jain_fairness"] >= 0.95
            emit(f"target.{name}_fairness_ge_0.95: {verdict(ok)}  (jain {fmt(f['jain_fairness'])})")
    # Judged over every served turn of those runs together (a p95 of a run of 10 is its
    # slowest turn): p95 <= target <=> at most 5 % of the turns over it.
    judged = {
        name: f for name, f in results.items()
        if "_over_" in name and f["requests"] <= APP_PATH_TARGET_USERS
    }  # fmt: skip
    if judged:
        over = sum(f["app_path_turns_over_target"] for f in judged.values())
        turns = sum(f["app_path_turns"] for f in judged.values())
        share = over / turns if turns else math.nan
        each = ", ".join(f"{n} {f['app_path_p95_ms']:.1f}" for n, f in judged.items())
        emit(f"target.app_path_p95_le_{APP_PATH_TARGET_MS}ms: {verdict(share <= 0.05)}  ({over} of"
             f" {turns} served turns over {APP_PATH_TARGET_MS} ms, {share:.1%}, of up to"
             f" {APP_PATH_TARGET_USERS} people arriving at random; p95 ms of each: {each})"
             )  # fmt: skip
    else:
        emit(f"target.app_path_p95_le_{APP_PATH_TARGET_MS}ms: not measured (no run of up to"
             f" {APP_PATH_TARGET_USERS} people over a spread; --spread > 0)")  # fmt: skip
    for name, f in results.items():
        if "_over_" in name and name not in judged:
            emit(f"  {name} (past the target's {APP_PATH_TARGET_USERS}): app path p95"
                 f" {f['app_path_p95_ms']:.1f} ms")  # fmt: skip
    for name, f in results.items():
        if "floor_bare_first_event_p95_ms" in f:
            emit(f"  {name}, all in the same instant (stress, not judged): app path p95"
                 f" {f['app_path_p95_ms']:.1f} ms; first event p95 of a bare server"
                 f" {f['floor_bare_first_event_p95_ms']:.1f} ms, of one Gradio event"
                 f" {f['floor_gradio_first_event_p95_ms']:.1f} ms")  # fmt: skip


def stream_rates(turns: Sequence[TurnResult]) -> list[float]:
    """Each person's mean reply tokens/s over their served turns."""
    rates: dict[str, list[float]] = {}
    for turn in turns:
        if turn.outcome == "served" and turn.tokens_per_s is not None:
            rates.setdefault(turn.user, []).append(turn.tokens_per_s)
    return [statistics.fmean(values) for values in rates.values()]


def ttfts(turns: Sequence[TurnResult]) -> list[float]:
    return [t.ttft_s for t in turns if t.outcome == "served" and t.ttft_s is not None]


def baseline_figures(
    base: Sequence[TurnResult], greedy: str | None, app: dict[str, float]
) -> dict[str, float]:
    """The baseline's figures and the app/baseline ratios (fairness too with a greedy person)."""
    b_p50, b_p95 = quantiles(ttfts(base))
    rates = stream_rates(base)
    rate = statistics.median(rates) if rates else math.nan
    figures = {
        "baseline_requests": len(base),
        "baseline_errors": sum(t.outcome == "error" for t in base),
        "baseline_ttft_p50_s": b_p50,
        "baseline_ttft_p95_s": b_p95,
        "baseline_tokens_per_s_per_user_p50": rate,
        "ratio_ttft_p50_app_over_baseline": app["ttft_p50_s"] / b_p50 if b_p50 else math.nan,
        "ratio_ttft_p95_app_over_baseline": app["ttft_p95_s"] / b_p95 if b_p95 else math.nan,
        "ratio_tokens_per_s_app_over_baseline": app["tokens_per_s_per_user_p50"] / rate
        if rate
        else math.nan,
    }
    if greedy is not None:
        jain_base, share = fairness(base, greedy)
        figures["baseline_jain_fairness"] = jain_base
        figures["baseline_greedy_token_share"] = share
        figures["ratio_jain_app_over_baseline"] = app["jain_fairness"] / jain_base
    return figures
