"""Usage benchmark: the Usage views over a year of rows for 500 people, beside a full scan.

    .venv/bin/python -m bench.usage                          # 500 users x 365 days x 2 models
    .venv/bin/python -m bench.usage --users 50 --days 30     # quick run

Fills usage_daily through the real schema (m006: clustered by day, indexed by user and day),
copies the same rows into a plain table with no index (the baseline: what every query does
without the index, a full scan), then times each view both ways, interleaved so both see the
same cache. The "hearth" figures are the Store methods the app calls. Prints `name: value`.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from backend.store.connections import connect
from backend.store.database import Store
from bench.timing import median_ms

MODELS = ("llama3.1:8b", "qwen2.5:7b", "gemma2:9b", "smollm2:135m")
SUMS = "sum(requests), sum(prompt_tokens), sum(reply_tokens), sum(engine_ms), sum(errors)"


def fill(store: Store, users: int, days: int, models_per_day: int, seed: int) -> int:
    """Users, and one row per user, day and model used that day; returns the row count."""
    rng = random.Random(seed)
    conn = connect(store.path)
    today = date.today()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, 'staff', 'h', ?)",
        [(f"user{i:04d}", "2024-01-01T00:00:00+00:00") for i in range(users)],
    )
    rows = []
    for offset in range(days):
        day = (today - timedelta(days=offset)).isoformat()
        for user_id in range(1, users + 1):
            for model in rng.sample(MODELS, models_per_day):
                requests = rng.randint(1, 40)
                rows.append((day, user_id, model, "page", requests, requests * 400,
                             requests * 250, requests * 3000.0, rng.randint(0, 1), 0))  # fmt: skip
    conn.executemany("INSERT INTO usage_daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("CREATE TABLE usage_flat AS SELECT * FROM usage_daily")  # no index at all
    conn.execute("COMMIT")  # no ANALYZE: the app never runs it, so its plans are these
    conn.close()
    return len(rows)


def query(conn: sqlite3.Connection, sql: str, table: str, params: tuple) -> list[tuple]:
    return conn.execute(sql.format(t=table), params).fetchall()


def views(store: Store, users: int, days: int) -> dict[str, tuple[Callable, str, tuple]]:
    """Each view: the Store call the app makes, and the same query's SQL for the baseline."""
    today = date.today()
    month = (today - timedelta(days=min(days, 30) - 1)).isoformat()
    year = (today - timedelta(days=days - 1)).isoformat()
    until = today.isoformat()
    someone = users // 2
    by_day = f"SELECT day, {SUMS} FROM {{t}} WHERE day BETWEEN ? AND ?"
    return {
        "admin_days_30d": (lambda: store.usage_by_day(month, until),
                           by_day + " GROUP BY day", (month, until)),
        "admin_top_users_30d": (lambda: store.usage_by_user(month, until, limit=10),
                                f"SELECT user_id, {SUMS} FROM {{t}} WHERE day BETWEEN ? AND ?"
                                " GROUP BY user_id ORDER BY sum(reply_tokens) DESC LIMIT 10",
                                (month, until)),
        "admin_models_30d": (lambda: store.usage_by_model(month, until),
                             f"SELECT model, {SUMS} FROM {{t}} WHERE day BETWEEN ? AND ?"
                             " GROUP BY model ORDER BY sum(requests) DESC LIMIT 10",
                             (month, until)),
        "admin_days_year": (lambda: store.usage_by_day(year, until),
                            by_day + " GROUP BY day", (year, until)),
        "admin_top_users_year": (lambda: store.usage_by_user(year, until, limit=10),
                                  f"SELECT user_id, {SUMS} FROM {{t}} WHERE day BETWEEN ? AND ?"
                                  " GROUP BY user_id ORDER BY sum(reply_tokens) DESC LIMIT 10",
                                  (year, until)),
        "staff_days_year": (lambda: store.usage_by_day(year, until, someone),
                            by_day + " AND user_id = ? GROUP BY day", (year, until, someone)),
        "staff_models_year": (lambda: store.usage_by_model(year, until, someone),
                              f"SELECT model, {SUMS} FROM {{t}} WHERE day BETWEEN ? AND ?"
                              " AND user_id = ? GROUP BY model", (year, until, someone)),
        "quota_check": (lambda: store.reply_tokens_on(someone, until),
                        "SELECT sum(reply_tokens) FROM {t} WHERE user_id = ? AND day = ?",
                        (someone, until)),
        "csv_30d_rows": (lambda: sum(1 for _ in store.iter_usage(month, until)),
                         "SELECT * FROM {t} WHERE day BETWEEN ? AND ? ORDER BY day, user_id",
                         (month, until)),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--models-per-day", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "usage.db") as store:
        started = time.perf_counter()
        rows = fill(store, args.users, args.days, args.models_per_day, args.seed)
        print(f"rows: {rows}")
        print(f"fill_s: {time.perf_counter() - started:.1f}")
        print(f"db_mib: {store.path.stat().st_size / 2**20:.1f}")
        raw = connect(store.path)
        for name, (call, sql, params) in views(store, args.users, args.days).items():
            hearth = median_ms(call, args.repeat)
            scan = median_ms(lambda s=sql, p=params: query(raw, s, "usage_flat", p), args.repeat)
            indexed = median_ms(
                lambda s=sql, p=params: query(raw, s, "usage_daily", p), args.repeat
            )
            print(f"{name}_ms: {hearth:.2f}")
            print(f"{name}_same_sql_indexed_ms: {indexed:.2f}")
            print(f"{name}_full_scan_ms: {scan:.2f}")
            print(f"{name}_speedup_vs_scan: {scan / max(hearth, 1e-6):.1f}x")
        raw.close()


if __name__ == "__main__":
    main()
