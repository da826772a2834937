"""What the app adds on top of the engine: tokens/s and time to first token, direct vs over HTTP.

(a) the embedded engine called in-process; (b) the running app (`python app.py --engine
embedded`) streaming over HTTP, read two ways: the SSE stream exactly as the browser page
reads it, and gradio_client (which adds its own 50 ms polling of that stream). Same prompts, greedy
decoding and a fixed reply length, interleaved (a, b, a, b, ...) so that load on this shared
machine hits both sides alike; then the app alone, back to back, because on a small machine its
first token is slower right after the bench's own engine has decoded. Also prints the app's
resident memory idle and after loading.

    .venv/bin/python -m bench.streaming [--rounds 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from backend.auth import CLI, UserAdmin
from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, ChatStats
from backend.engines.embedded import BUNDLED_MODEL_NAME, EmbeddedEngine
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.gradio_http import GradioHTTP, timed_stream

SYSTEM = "You are a helpful assistant."
PROMPTS = [
    "Write a story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe the water cycle in detail.",
]


PAGE_NUM_CTX = 2048  # what this bench's page turns ask for (api_args)


def direct(
    engine: EmbeddedEngine, prompt: str, tokens: int, num_ctx: int = PAGE_NUM_CTX
) -> tuple[float, float, int]:
    """(ttft_ms, tokens_per_s, reply_tokens) for one in-process call, timed like a client; at
    the context the app's turn runs with (its engine is loaded at that size)."""
    options = ChatOptions(temperature=0.0, num_ctx=num_ctx, num_predict=tokens, seed=1)
    messages = [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]
    start = time.perf_counter()
    first = last = None
    stats = None
    for item in engine.chat(BUNDLED_MODEL_NAME, messages, options):
        now = time.perf_counter()
        if isinstance(item, ChatDelta):
            first = first or now
            last = now
        elif isinstance(item, ChatStats):
            stats = item
    assert first is not None and last is not None and stats is not None
    count = stats.reply_tokens or 0
    return (first - start) * 1000, (count - 1) / (last - first), count


def api_args(prompt: str, tokens: int) -> list[object]:
    return [prompt, BUNDLED_MODEL_NAME, None, SYSTEM, 0.0, PAGE_NUM_CTX, tokens]


BROWSER_SESSION = "bench-page"  # one page session, as one open browser tab keeps


def browser_like(http: GradioHTTP, fn_index: int, prompt: str, tokens: int, count: int):
    """(ttft_ms, tokens_per_s) over the SSE stream a browser page reads."""
    marks = timed_stream(http, fn_index, api_args(prompt, tokens), BROWSER_SESSION)
    return marks[0] * 1000, (count - 1) / (marks[-1] - marks[0])


def with_gradio_client(client, prompt: str, tokens: int, count: int) -> tuple[float, float]:
    """(ttft_ms, tokens_per_s) seen through gradio_client (which polls its queue every 50 ms)."""
    start = time.perf_counter()
    first = last = None
    for _update in client.submit(*api_args(prompt, tokens), api_name="/chat"):
        now = time.perf_counter()
        first = first or now
        last = now
    assert first is not None and last is not None
    return (first - start) * 1000, (count - 1) / (last - first)


def stored_ttfts(db_path: Path) -> list[float]:
    """Time to first token as the app's engine measured it, for each saved reply in order."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT ttft_ms FROM messages WHERE role = 'assistant' ORDER BY id")
        return [row[0] for row in rows]


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def interleaved(
    rounds: int, tokens: int, engine: EmbeddedEngine, app_call, num_ctx: int = PAGE_NUM_CTX
) -> list[tuple]:
    """(direct ttft, direct tok/s, app ttft, app tok/s) for each prompt, every round; the order
    of the pair alternates (a b, b a, ...) so that whatever favours the first or the second of
    two runs in a row (caches, clock boost) favours each side as often."""
    counts = {p: direct(engine, p, tokens, num_ctx)[2] for p in PROMPTS}  # greedy: fixed
    rows = []
    for turn in range(rounds * len(PROMPTS)):
        prompt = PROMPTS[turn % len(PROMPTS)]
        if turn % 2 == 0:
            d_ttft, d_tps, _ = direct(engine, prompt, tokens, num_ctx)
            rows.append((d_ttft, d_tps, *app_call(prompt, tokens, counts[prompt])))
        else:
            app = app_call(prompt, tokens, counts[prompt])
            d_ttft, d_tps, _ = direct(engine, prompt, tokens, num_ctx)
            rows.append((d_ttft, d_tps, *app))
    return rows


def report(label: str, rows: list[tuple]) -> None:
    d_ttft, d_tps, a_ttft, a_tps = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"{label}_direct_tokens_per_s_p50: {d_tps:.1f}")
    print(f"{label}_app_tokens_per_s_p50: {a_tps:.1f}")
    print(f"{label}_ratio_app_vs_direct_tokens_per_s: {a_tps / d_tps:.3f}  (target >= 0.98)")
    # Each pair ran back to back on the same prompt: its own ratio cancels the drift of a
    # shared machine that the medians of the two columns keep.
    paired = sorted(row[3] / row[1] for row in rows)
    quartiles = statistics.quantiles(paired, n=4)
    print(f"{label}_paired_ratio_tokens_per_s_p50: {statistics.median(paired):.3f}  "
          f"(quartiles {quartiles[0]:.3f} .. {quartiles[2]:.3f})")  # fmt: skip
    print(f"{label}_direct_ttft_ms_p50: {d_ttft:.1f}")
    print(f"{label}_app_ttft_ms_p50: {a_ttft:.1f}")
    print(f"{label}_ttft_added_ms_p50: {a_ttft - d_ttft:.1f}  (target <= 30)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()

    from gradio_client import Client

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        with Store(data_dir / "hearth.db") as store:
            UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
        engine = EmbeddedEngine(Path(tmp) / "models")
        with AppProcess(data_dir) as app:
            idle_mib = rss_mib(app.process.pid)
            http = GradioHTTP(app.url, "admin", ADMIN_PASSWORD)
            fn_index = http.fn_index("chat")
            # Warm both engines: model load and first-call costs are not what we compare.
            direct(engine, PROMPTS[0], 8)
            browser_like(http, fn_index, PROMPTS[0], 8, 8)
            loaded_mib = rss_mib(app.process.pid)
            sse_rows = interleaved(
                args.rounds, args.tokens, engine,
                lambda prompt, tokens, count: browser_like(http, fn_index, prompt, tokens, count),
            )  # fmt: skip
            engine_ttfts = stored_ttfts(data_dir / "hearth.db")[-len(sse_rows) :]
            # The same requests with no direct call between them: on a small machine the
            # app's first token slows down right after the bench's own engine has decoded.
            alone = [
                browser_like(http, fn_index, prompt, args.tokens, args.tokens)[0]
                for _ in range(args.rounds)
                for prompt in PROMPTS
            ]
            alone_engine = stored_ttfts(data_dir / "hearth.db")[-len(alone) :]
            http.close()
            # gradio_client's reader threads poll all the time: measure it in a phase of its
            # own so that its CPU use does not slow the app during the SSE phase.
            client = Client(app.url, auth=("admin", ADMIN_PASSWORD), verbose=False)
            client_rows = interleaved(
                args.rounds, args.tokens, engine,
                lambda prompt, tokens, count: with_gradio_client(client, prompt, tokens, count),
            )  # fmt: skip
            client.close()
        engine.close()

    print(
        f"runs: {len(sse_rows)} per phase ({args.rounds} rounds x {len(PROMPTS)} prompts, "
        f"{args.tokens} tokens each, greedy; tokens/s = decode rate, first to last token)"
    )
    report("sse", sse_rows)
    engine_ttft = statistics.median(engine_ttfts)
    path_added = statistics.median(
        row[2] - t for row, t in zip(sse_rows, engine_ttfts, strict=True)
    )
    print(
        f"sse_app_engine_ttft_ms_p50: {engine_ttft:.1f}  (the app's own engine, stored per reply)"
    )
    print(f"sse_http_and_app_path_added_ms_p50: {path_added:.1f}  (client ttft - engine ttft)")
    direct_ttft = statistics.median(row[0] for row in sse_rows)
    alone_ttft = statistics.median(alone)
    print(f"sse_app_back_to_back_ttft_ms_p50: {alone_ttft:.1f}  (no direct call in between)")
    print(f"sse_app_back_to_back_engine_ttft_ms_p50: {statistics.median(alone_engine):.1f}")
    print(f"sse_app_back_to_back_ttft_added_ms_p50: {alone_ttft - direct_ttft:.1f}  (target <= 30)")
    report("gradio_client", client_rows)
    print(f"app_rss_idle_mib: {idle_mib:.0f}")
    print(f"app_rss_model_loaded_mib: {loaded_mib:.0f}")


if __name__ == "__main__":
    main()
