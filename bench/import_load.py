"""Importing a big conversation while others sign in: what the import costs, and what it does
to everyone else's logins and page loads.

Runs the real app (`python app.py --engine embedded`) and talks HTTP to it. Rounds alternate
a baseline (staff logins and `GET /` with nothing else running) with the same requests made
while admin imports the largest allowed export (upload + the chat_import event) in another
thread, so load on this shared machine hits both sides alike. Also times the refusal of a
20 MB upload, and opening the imported chat in the store (newest messages vs all of them).

    .venv/bin/python -m bench.import_load [--rounds 5] [--chars 150]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from backend.auth import CLI, Authentication, UserAdmin
from backend.chat.conversations import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_MESSAGES,
    OPEN_NEWEST_MESSAGES,
    ConversationService,
)
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.conversation_exports import export
from tests.support.gradio_http import GradioHTTP

STAFF_PASSWORD = "staff-pass-123"


def export_bytes(messages: int, chars: int) -> bytes:
    body = [
        {"role": ("user", "assistant")[i % 2], "content": f"{i} " + "word " * (chars // 5)}
        for i in range(messages)
    ]
    return export(body, title="bench import")


def import_once(admin: GradioHTTP, raw: bytes) -> float:
    """Seconds for one import as the page does it: upload the file, then run chat_import."""
    start = time.perf_counter()
    response = admin.client.post("/gradio_api/upload", files={"files": ("b.json", raw)})
    response.raise_for_status()
    [path] = response.json()
    data = [{"path": path, "orig_name": "b.json", "meta": {"_type": "gradio.FileData"}}]
    result = admin.call(admin.fn_index("chat_import"), data)
    if result.get("success") is not True:
        raise RuntimeError(f"import failed: {result}")
    return time.perf_counter() - start


def login_and_page(url: str) -> tuple[float, float]:
    """(login_ms, get_root_ms) for one fresh staff session."""
    with httpx.Client(base_url=url, timeout=120, trust_env=False) as client:
        start = time.perf_counter()
        response = client.post("/login", data={"username": "staff", "password": STAFF_PASSWORD})
        login = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"login failed: {response.status_code} {response.text}")
        start = time.perf_counter()
        client.get("/").raise_for_status()
        return login * 1000, (time.perf_counter() - start) * 1000


def loaded_round(app: AppProcess, admin: GradioHTTP, raw: bytes) -> tuple[float, list]:
    """Import in a thread; log in over and over until it ends. (import_s, samples)."""
    took: list[float] = []
    worker = threading.Thread(target=lambda: took.append(import_once(admin, raw)))
    worker.start()
    samples = []
    while worker.is_alive() or not samples:
        samples.append(login_and_page(app.url))
    worker.join()
    return took[0], samples


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def report(name: str, base: list[float], loaded: list[float]) -> None:
    print(f"{name}_baseline_ms_p50: {statistics.median(base):.1f}")
    print(f"{name}_during_import_ms_p50: {statistics.median(loaded):.1f}")
    print(f"{name}_during_import_ms_p95: {p(loaded, 0.95):.1f}")
    print(f"{name}_during_import_ms_max: {max(loaded):.1f}")
    ratio = statistics.median(loaded) / statistics.median(base)
    print(f"{name}_ratio_during_vs_baseline_p50: {ratio:.2f}")


def open_figures(db: Path) -> None:
    """Opening the imported chat in the store: newest OPEN_NEWEST_MESSAGES vs every message."""
    with Store(db) as store:
        admin = Authentication(store).resolve("admin")
        assert admin is not None
        history = ConversationService(store)
        chat = history.page(admin, 1, 1).conversations[0]
        newest, whole = [], []
        for _ in range(5):
            start = time.perf_counter()
            history.open(admin, chat.id)
            newest.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            store.messages(admin.id, chat.id)
            whole.append((time.perf_counter() - start) * 1000)
    print(f"open_newest_{OPEN_NEWEST_MESSAGES}_of_{chat.message_count}_ms_p50: "
          f"{statistics.median(newest):.1f}")  # fmt: skip
    print(f"read_all_{chat.message_count}_ms_p50: {statistics.median(whole):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chars", type=int, default=150, help="characters per message")
    args = parser.parse_args()
    raw = export_bytes(MAX_IMPORT_MESSAGES, args.chars)
    if len(raw) > MAX_IMPORT_BYTES:
        parser.error(f"{len(raw):,} bytes is over the limit: use fewer --chars")
    data_dir = Path(tempfile.mkdtemp(prefix="hearth-bench-import-"))
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
        UserAdmin(store).add_user(CLI, "staff", STAFF_PASSWORD, "staff")
    extra = {"GRADIO_TEMP_DIR": str(data_dir / "uploads")}
    with AppProcess(data_dir, extra_env=extra) as app:
        admin = GradioHTTP(app.url, "admin", ADMIN_PASSWORD)
        proc = psutil.Process(app.process.pid)
        print(f"import_messages: {MAX_IMPORT_MESSAGES}")
        print(f"import_bytes: {len(raw)}")
        print(f"app_rss_before_mib: {proc.memory_info().rss / 2**20:.0f}")
        login_and_page(app.url)  # warm up both paths
        base_login, base_page, loaded_login, loaded_page, imports = [], [], [], [], []
        for _ in range(args.rounds):
            for login_ms, page_ms in (login_and_page(app.url) for _ in range(5)):
                base_login.append(login_ms)
                base_page.append(page_ms)
            took, samples = loaded_round(app, admin, raw)
            imports.append(took)
            loaded_login += [s[0] for s in samples]
            loaded_page += [s[1] for s in samples]
        rss_after = proc.memory_info().rss / 2**20
        print(f"import_s_p50: {statistics.median(imports):.2f}")
        print(f"import_messages_per_s_p50: {MAX_IMPORT_MESSAGES / statistics.median(imports):.0f}")
        print(f"app_rss_after_imports_mib: {rss_after:.0f}")
        print(f"logins_measured: baseline {len(base_login)}, during imports {len(loaded_login)}")
        report("login", base_login, loaded_login)
        report("get_root", base_page, loaded_page)
        start = time.perf_counter()
        big = admin.client.post(
            "/gradio_api/upload", files={"files": ("big.json", b" " * 20 * 2**20)}
        )
        refused_ms = (time.perf_counter() - start) * 1000
        print(f"upload_20mb_status: {big.status_code}")
        print(f"upload_20mb_refused_ms: {refused_ms:.0f}")
        admin.close()
    open_figures(data_dir / "hearth.db")


if __name__ == "__main__":
    main()
