"""The real app for a hostile batch: seeded users and rows, a memory guard, and the after-checks.

The app child gets an address-space limit (RLIMIT_AS, via prlimit) and a watchdog that kills it
past a resident-memory ceiling, so a value such as num_ctx=10**9 reaching an engine cannot take
the shared machine down with it; the batch then reports the crash instead.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from backend.auth import CLI, UserAdmin
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.gradio_http import GradioHTTP
from tests.support.hostile import Endpoint, Matrix, endpoints, plausible, run_role, send

GIB = 1 << 30
ADDRESS_SPACE_LIMIT = 8 * GIB  # virtual: thread stacks and malloc arenas reserve a lot
KILL_ABOVE_RSS = 3 * GIB  # resident: the watchdog's ceiling
PASSWORDS = {
    "admin": ADMIN_PASSWORD,
    "staff": "staff-pass-123",
    "alice": "alice-pass-123",
    "bystander": "bystander-pass-1",
    "target": "target-pass-123",  # the user admin events act on; its row may change
}
SECRET = "alice's seeded words 7731"
PROTECTED = {  # table: (key, which rows); the SQL is ours, the one parameter alice's id
    "users": ("id", "name != 'target'"),
    "conversations": ("id", "owner_id = ?"),
    "messages": ("id", "owner_id = ?"),
    "audit": ("id", "1"),
    "settings": ("key", "1"),
}


@dataclass
class Report:
    """One family's batch: every attempt, and what the app looked like afterwards."""

    matrix: Matrix
    rss_start: int
    rss_max: int = 0
    killed: bool = False
    bystander_s: float = 0.0
    bystander_ok: bool = False
    integrity: list[str] = field(default_factory=list)
    changed_rows: list[str] = field(default_factory=list)


def seed(data_dir: Path) -> None:
    with Store(data_dir / "hearth.db") as store:
        accounts = UserAdmin(store)
        users = {
            name: accounts.add_user(CLI, name, password, "admin" if name == "admin" else "staff")
            for name, password in PASSWORDS.items()
        }
        for name in ("alice", "staff"):
            owner = users[name]
            conversation = store.create_conversation(owner.id, title=f"{name}'s plans", model="m")
            store.add_message(owner.id, conversation.id, role="user", content=SECRET)
            store.add_message(owner.id, conversation.id, role="assistant", content="Noted.")


def snapshot(db: Path) -> dict[str, dict[Any, tuple]]:
    """The rows no caller of the batch may change, by key.

    Alice's conversation and messages (nobody in the batch acts as alice; staff's own chat may
    legitimately grow), every user but the target, the audit entries and the settings.
    """
    conn = sqlite3.connect(db)
    try:
        (alice,) = conn.execute("SELECT id FROM users WHERE name = 'alice'").fetchone()
        found = {}
        for table, (key, where) in PROTECTED.items():
            cursor = conn.execute(
                f"SELECT * FROM {table} WHERE {where}", (alice,) * where.count("?")
            )
            names = [c[0] for c in cursor.description]
            found[table] = {row[names.index(key)]: row for row in cursor}
        return found
    finally:
        conn.close()


def changed_since(before: dict[str, dict[Any, tuple]], after: dict[str, dict[Any, tuple]]):
    return [
        f"{table} {key}: {row!r:.120} -> {after[table].get(key)!r:.120}"
        for table, rows in before.items()
        for key, row in rows.items()
        if after[table].get(key) != row
    ]


def integrity(db: Path) -> list[str]:
    """What SQLite and FTS5 find wrong with the file ([] when it is sound)."""
    conn = sqlite3.connect(db)
    try:
        found = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        found += [repr(r) for r in conn.execute("PRAGMA foreign_key_check")]
        try:
            conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')")
        except sqlite3.DatabaseError as exc:
            found.append(f"messages_fts: {exc}")
        conn.rollback()
        return found
    finally:
        conn.close()


class Watchdog(threading.Thread):
    """Samples the child's resident memory; kills it past KILL_ABOVE_RSS."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.process.rlimit(psutil.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
        self.rss_max = self.process.memory_info().rss
        self.killed = False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                rss = self.process.memory_info().rss
            except psutil.NoSuchProcess:
                return
            self.rss_max = max(self.rss_max, rss)
            if rss > KILL_ABOVE_RSS:
                self.killed = True
                self.process.kill()
                return


@contextmanager
def hostile_app(data_dir: Path) -> Iterator[tuple[AppProcess, Watchdog]]:
    seed(data_dir)
    with AppProcess(data_dir) as app:
        assert app.process is not None
        watchdog = Watchdog(app.process.pid)
        watchdog.start()
        try:
            yield app, watchdog
        finally:
            watchdog.done.set()


def page_session(http: GradioHTTP, config: dict[str, Any]) -> str:
    """A session that ran the page's load events, as a browser tab has (dropdown choices...)."""
    session = f"hostile-{http.username or 'anonymous'}"
    loads = {d["id"] for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"])}
    for endpoint in endpoints(config):
        if endpoint.fn_index in loads:
            send(http, endpoint.fn_index, [], session)
    return session


def run_family(
    app: AppProcess,
    watchdog: Watchdog,
    belongs: Callable[[str], bool],
    overrides: dict[str, dict[int, Any]],
    before_each: dict[str, str] | None = None,
) -> Report:
    """Every event of one family, three callers, the hostile rows; then the after-checks."""
    db = app.data_dir / "hearth.db"
    before = snapshot(db)
    report = Report(Matrix(), rss_start=watchdog.process.memory_info().rss)
    clients = {"anonymous": GradioHTTP(app.url)}
    clients |= {role: GradioHTTP(app.url, role, PASSWORDS[role]) for role in ("staff", "admin")}
    try:
        config = clients["admin"].config()
        family = [e for e in endpoints(config) if belongs(e.api_name)]
        by_name = {e.api_name: e.fn_index for e in endpoints(config)}
        resets = {group: by_name[name] for group, name in (before_each or {}).items()}
        first: dict[tuple[str, tuple[str, ...]], Endpoint] = {}
        for endpoint in family:
            first.setdefault(endpoint.group, endpoint)

        def defaults(endpoint: Endpoint) -> list[Any]:
            return plausible(endpoint, config, overrides)

        def alive() -> bool:
            return not watchdog.killed and app.process is not None and app.process.poll() is None

        for role, http in clients.items():
            session = page_session(http, config) if role != "anonymous" else None
            full = (lambda e: first[e.group] is e) if role == "admin" else (lambda e: False)
            run_role(report.matrix, role, http, family, defaults, full, alive, session, resets)
            if report.matrix.app_died:
                break
        else:
            report.bystander_s, report.bystander_ok = bystander_check(app, config)
    finally:
        for http in clients.values():
            http.close()
    report.rss_max, report.killed = watchdog.rss_max, watchdog.killed
    report.integrity = integrity(db)
    report.changed_rows = changed_since(before, snapshot(db))
    return report


def bystander_check(app: AppProcess, config: dict[str, Any]) -> tuple[float, bool]:
    """Seconds for another user to sign in and get the page header, and whether it came."""
    header = next(d["id"] for d in config["dependencies"] if d["api_name"] == "refresh_header")
    start = time.perf_counter()
    try:
        # From another loopback address: the hostile batch's failed logins rightly slow its
        # own address (the per-address throttle), not everyone's.
        http = GradioHTTP(app.url, "bystander", PASSWORDS["bystander"], local_address="127.0.0.2")
    except (PermissionError, httpx.HTTPError):
        return time.perf_counter() - start, False
    try:
        outcome = send(http, header, [])
        return time.perf_counter() - start, "bystander" in outcome.output
    finally:
        http.close()
