"""What the engine pool adds to time to first token: through EnginePool vs OllamaEngine direct.

Both ask the same Ollama protocol test server (scripted replies, so the engine side costs the
same every time), interleaved (direct, pool, direct, pool, ...) so load on a shared machine hits
both alike; prints the medians and their ratio.

    .venv/bin/python -m bench.pool [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable

from backend.engines.base import ChatDelta, ChatMessage, ChatOptions, ChatStats
from backend.engines.config import EngineSpec
from backend.engines.ollama import OllamaEngine
from backend.engines.pool import EnginePool
from backend.engines.pool_member import member_from_spec
from tests.support.ollama_pool import scripted_ollama_servers
from tests.support.ollama_server import BUNDLED_NAME

MESSAGES = [ChatMessage("user", "Count for me.")]
OPTIONS = ChatOptions(num_ctx=2048, num_predict=8)


def ttft_ms(stream: Iterable[ChatDelta | ChatStats], start: float) -> float:
    first = None
    for item in stream:
        if first is None and isinstance(item, ChatDelta):
            first = time.perf_counter()
    assert first is not None, "the reply had no text"
    return (first - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    reply = " ".join(f"w{i}" for i in range(8))
    with scripted_ollama_servers(3, reply, tokens_per_s=0) as servers:
        direct = OllamaEngine(servers[0].url, timeout_s=60)
        members = [
            member_from_spec(EngineSpec(f"e{i}", "ollama", s.url), timeout_s=60)
            for i, s in enumerate(servers)
        ]
        pool = EnginePool(members)
        pool.start()
        direct.load(BUNDLED_NAME, 2048)  # the pool routes to e0, where it is loaded
        pool.refresh()
        times: dict[str, list[float]] = {"direct": [], "pool": []}
        try:
            for _ in range(args.rounds):
                start = time.perf_counter()
                times["direct"].append(ttft_ms(direct.chat(BUNDLED_NAME, MESSAGES, OPTIONS), start))
                start = time.perf_counter()
                times["pool"].append(ttft_ms(pool.chat(BUNDLED_NAME, MESSAGES, OPTIONS), start))
        finally:
            pool.close()
            direct.close()
        asked = [len(s.scripted.requests) for s in servers]
    direct_ms = statistics.median(times["direct"])
    pool_ms = statistics.median(times["pool"])
    print(f"rounds {args.rounds}; chats reaching each server: {asked}")
    print(f"TTFT median: direct {direct_ms:.2f} ms, pool {pool_ms:.2f} ms")
    print(f"pool / direct: {pool_ms / direct_ms:.2f}x (+{pool_ms - direct_ms:.2f} ms)")


if __name__ == "__main__":
    main()
