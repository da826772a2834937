"""What /v1/chat/completions adds on top of the engine: tokens/s and time to first token.

(a) the embedded engine called in-process; (b) the running app (`python app.py --engine
embedded`) through POST /v1/chat/completions with stream true, read two ways: raw SSE over
httpx (what any client reads) and the official openai SDK. Same prompts, greedy decoding and a
fixed reply length, interleaved (a, b, a, b, ...) so that load on this shared machine hits both
sides alike (bench.streaming does the same for the page's own stream). On 2+ cores the app runs
on core 1 and this client with the direct engine on core 0 (--no-pin: anywhere).

    .venv/bin/python -m bench.openai_api [--rounds 5] [--tokens 128] [--no-pin]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import openai

from backend.auth import CLI, ApiKeys, UserAdmin
from backend.engines.base import DEFAULT_NUM_CTX
from backend.engines.embedded import BUNDLED_MODEL_NAME, EmbeddedEngine
from backend.store.database import Store
from bench.cores import describe, pin_apart
from bench.streaming import PROMPTS, SYSTEM, direct, interleaved, report
from tests.support.app_process import ADMIN_PASSWORD, AppProcess

# /v1 has no context parameter: a completion runs at Hearth's default, so the direct calls do too.
V1_NUM_CTX = DEFAULT_NUM_CTX


def _body(prompt: str, tokens: int) -> dict[str, object]:
    return {"model": BUNDLED_MODEL_NAME, "stream": True, "temperature": 0.0, "seed": 1,
            "max_tokens": tokens, "messages": [{"role": "system", "content": SYSTEM},
                                               {"role": "user", "content": prompt}]}  # fmt: skip


def raw_sse(http: httpx.Client, prompt: str, tokens: int, count: int) -> tuple[float, float]:
    """(ttft_ms, tokens_per_s) reading the event stream's content chunks as they arrive."""
    start = time.perf_counter()
    first = last = None
    with http.stream("POST", "/v1/chat/completions", json=_body(prompt, tokens)) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                now = time.perf_counter()
                first = first or now
                last = now
    assert first is not None and last is not None
    return (first - start) * 1000, (count - 1) / (last - first)


def with_sdk(client: openai.OpenAI, prompt: str, tokens: int, count: int) -> tuple[float, float]:
    """(ttft_ms, tokens_per_s) seen through the openai SDK's stream."""
    start = time.perf_counter()
    first = last = None
    stream = client.chat.completions.create(
        model=BUNDLED_MODEL_NAME,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
        stream=True,
        temperature=0.0,
        seed=1,
        max_tokens=tokens,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
    assert first is not None and last is not None
    return (first - start) * 1000, (count - 1) / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument(
        "--no-pin", action="store_true",
        help="do not put the app and this client (with the direct engine) on separate cores",
    )  # fmt: skip
    args = parser.parse_args()
    prefix = [] if args.no_pin else pin_apart()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        with Store(data_dir / "hearth.db") as store:
            admin = UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
            key = ApiKeys(store).create(admin, "bench").secret
        engine = EmbeddedEngine(Path(tmp) / "models")
        with AppProcess(data_dir, command_prefix=prefix) as app:
            headers = {"Authorization": f"Bearer {key}"}
            http = httpx.Client(base_url=app.url, headers=headers, timeout=300)
            client = openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0)
            direct(engine, PROMPTS[0], 8, V1_NUM_CTX)  # warm both: loads are not what we compare
            raw_sse(http, PROMPTS[0], 8, 8)

            def sse(p: str, t: int, c: int) -> tuple[float, float]:
                return raw_sse(http, p, t, c)

            def sdk(p: str, t: int, c: int) -> tuple[float, float]:
                return with_sdk(client, p, t, c)

            sse_rows = interleaved(args.rounds, args.tokens, engine, sse, V1_NUM_CTX)
            sdk_rows = interleaved(args.rounds, args.tokens, engine, sdk, V1_NUM_CTX)
            http.close()
            client.close()
        engine.close()
    print(f"cores: {describe(prefix)}")
    print(
        f"runs: {len(sse_rows)} per phase ({args.rounds} rounds x {len(PROMPTS)} prompts, "
        f"{args.tokens} tokens each, greedy; tokens/s = decode rate, first to last token)"
    )
    report("v1_raw_sse", sse_rows)
    report("v1_openai_sdk", sdk_rows)


if __name__ == "__main__":
    main()
