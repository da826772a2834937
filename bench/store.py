"""Store benchmark: Store methods beside raw sqlite3 doing the same statements on the same file.

    .venv/bin/python -m bench.store                      # 10,000 conversations, 1,000,000 messages
    .venv/bin/python -m bench.store --conversations 500 --messages 20000   # quick run

Generates the database with bulk inserts through the real schema (triggers included), then
measures p50 / p99 of append, list, open and search, interleaving each Store call with its
raw baseline so both see the same cache and WAL state. Prints `name: value` lines.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from backend.store.connections import connect
from backend.store.database import Store
from backend.store.records import (
    CONVERSATION_MESSAGES_SQL,
    INSERT_MESSAGE,
    LIST_CONVERSATIONS_SQL,
    SEARCH_SQL,
)
from backend.store.values import fts_query, now_iso

OPEN_SIZE = 200
CONVERSATIONS_PER_USER = 100


def vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(size * 2)}
    return sorted(words)[:size]


def texts(rng: random.Random, words: list[str], count: int) -> list[str]:
    """A pool of message texts with a Zipf-like word distribution."""
    weights = [1 / (rank + 1) for rank in range(len(words))]
    cumulative = list(_accumulate(weights))
    return [
        " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(8, 60)))
        for _ in range(count)
    ]


def _accumulate(values: list[float]):
    total = 0.0
    for value in values:
        total += value
        yield total


def sizes(conversations: int, messages: int) -> list[int]:
    """Messages per conversation: every tenth has OPEN_SIZE, the rest share the remainder."""
    open_size = min(OPEN_SIZE, messages // conversations * 2 or 1)
    opened = [i % 10 == 0 for i in range(conversations)]
    rest = messages - open_size * sum(opened)
    others = conversations - sum(opened)
    base, extra = divmod(max(rest, 0), max(others, 1))
    result, given = [], 0
    for is_open in opened:
        if is_open:
            result.append(open_size)
        else:
            result.append(base + (1 if given < extra else 0))
            given += 1
    return result


def generate(path: Path, conversations: int, messages: int, rng: random.Random) -> list[str]:
    Store(path).close()  # create and migrate through the real code path
    users = max(1, conversations // CONVERSATIONS_PER_USER)
    words = vocabulary(rng, 5000)
    pool = texts(rng, words, 20_000)
    conn = connect(path)
    stamp = now_iso()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO users (id, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        [(u + 1, f"user{u + 1}", "staff", "x", stamp) for u in range(users)],
    )
    conn.executemany(
        "INSERT INTO conversations (id, owner_id, title, model, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (c + 1, c % users + 1, f"chat {c + 1}", "m", stamp, f"2025-01-01T00:{c:08d}")
            for c in range(conversations)
        ],
    )

    def rows():
        for c, count in enumerate(sizes(conversations, messages)):
            for i in range(count):
                role = "user" if i % 2 == 0 else "assistant"
                yield (c + 1, c % users + 1, role, rng.choice(pool), "m", stamp,
                       "complete", "", None, None, None, None)  # fmt: skip

    conn.executemany(INSERT_MESSAGE, rows())
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return words


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    name: str,
    store_call: Callable[[int], object],
    raw_call: Callable[[int], object],
    samples: int,
    target: str,
) -> None:
    """Time both callables alternately, `samples` times each, and print p50/p99 and ratios."""
    for i in range(5):
        store_call(i)
        raw_call(i)
    store_ms: list[float] = []
    raw_ms: list[float] = []
    for i in range(samples):
        for call, bucket in ((store_call, store_ms), (raw_call, raw_ms)):
            started = time.perf_counter()
            call(i)
            bucket.append((time.perf_counter() - started) * 1e3)
    for stat, fraction in (("p50", 0.5), ("p99", 0.99)):
        ours, raw = percentile(store_ms, fraction), percentile(raw_ms, fraction)
        print(f"{name}_store_{stat}_ms: {ours:.3f}")
        print(f"{name}_raw_{stat}_ms: {raw:.3f}")
        print(f"{name}_ratio_{stat}: {ours / raw:.2f}")
    print(f"{name}_target: {target}")


def run(args: argparse.Namespace, path: Path) -> None:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    words = generate(path, args.conversations, args.messages, rng)
    print(f"generate_s: {time.perf_counter() - started:.1f}")
    print(f"conversations: {args.conversations}")
    print(f"messages: {args.messages}")
    print(f"db_mib: {path.stat().st_size / 2**20:.0f}")
    users = max(1, args.conversations // CONVERSATIONS_PER_USER)

    store = Store(path)
    raw = connect(path)
    owner_of = {c: (c - 1) % users + 1 for c in range(1, args.conversations + 1)}
    open_ids = [c for c in owner_of if (c - 1) % 10 == 0]

    def store_append(i: int) -> None:
        c = rng.randint(1, args.conversations)
        store.add_message(owner_of[c], c, role="user", content=rng.choice(words))

    def raw_append(i: int) -> None:
        c = rng.randint(1, args.conversations)
        stamp = now_iso()
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ? AND owner_id = ?",
            (stamp, c, owner_of[c]),
        )
        raw.execute(
            INSERT_MESSAGE,
            (c, owner_of[c], "user", rng.choice(words), "", stamp, "complete", "",
             None, None, None, None),
        )  # fmt: skip
        raw.execute("COMMIT")

    measure("append", store_append, raw_append, args.samples, "ratio_p50 <= 1.5")
    measure(
        "list50",
        lambda i: store.list_conversations(i % users + 1, limit=50),
        lambda i: raw.execute(LIST_CONVERSATIONS_SQL, (i % users + 1, 50, 0)).fetchall(),
        args.samples,
        "store_p50_ms < 5",
    )

    def open_args(i: int) -> tuple[int, int]:
        c = open_ids[i % len(open_ids)]
        return owner_of[c], c

    measure(
        "open200",
        lambda i: store.messages(*open_args(i)),
        lambda i: raw.execute(CONVERSATION_MESSAGES_SQL, open_args(i)[::-1]).fetchall(),
        args.samples,
        "store_p50_ms < 5",
    )
    # Queries across the frequency range: common, middling and rare words, two words, a prefix.
    queries = {
        "common_word": words[3],
        "middling_word": words[40],
        "rare_word": words[3000],
        "two_words": f"{words[10]} {words[200]}",
        "prefix3": words[150][:3],
    }
    in_turn = list(queries.values())
    searches = [("search", lambda i: in_turn[i % len(in_turn)], args.samples)]
    for kind, text in queries.items():
        searches.append((f"search_{kind}", lambda i, text=text: text, args.samples // 3))
    for name, text_for, samples in searches:

        def store_search(i: int, text_for=text_for) -> list:
            return store.search(i % users + 1, text_for(i))

        def raw_search(i: int, text_for=text_for) -> list:
            owner = i % users + 1
            match = fts_query(owner, text_for(i))
            return raw.execute(SEARCH_SQL, (match, owner, owner, 20)).fetchall()

        measure(name, store_search, raw_search, samples, "store_p50_ms < 50")
    raw.close()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        run(args, Path(folder) / "bench.db")


if __name__ == "__main__":
    main()
