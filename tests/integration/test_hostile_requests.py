"""Hostile requests below the events: malformed queue/join bodies, /login, files, uploads, REST.

What a script can send that never reaches a handler: bodies that are not JSON or are nested
100,000 deep, every field of a queue/join body replaced by each hostile value, login forms with
absurd names, path traversal through /gradio_api/file=, uploads with hostile file names. Each
answer must be a result or a refusal with a sentence (FastAPI's {"detail": ...}); a 500 must be
our logged reference, never Starlette's bare "Internal Server Error". Run with -s for the table.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gradio_http import GradioHTTP
from tests.support.hostile import HOSTILE, PYTHON_WORDS, ROW_ONLY, SERVER_REFERENCE
from tests.support.hostile_app import (
    GIB,
    PASSWORDS,
    bystander_check,
    changed_since,
    hostile_app,
    integrity,
    snapshot,
)

# A real app under a batch of hostile calls: minutes, out of the fast loop.
pytestmark = pytest.mark.slow

# Connection: close, so that a response the server fails to finish is charged to its request
# and not to the next one on a kept-alive connection.
JSON = {"content-type": "application/json", "connection": "close"}
FORM = {"content-type": "application/x-www-form-urlencoded", "connection": "close"}
CLOSE = {"connection": "close"}
# Text a form field or a URL can carry (a lone surrogate cannot be encoded: undecodable bytes
# stand in for it below).
TEXT_VALUES = {k: v for k, v in HOSTILE.items() if isinstance(v, str) and k != "lone surrogate"}
RSS_BOUND = 2 * GIB
TRAVERSALS = (
    "../../etc/passwd",
    "/etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "data/hearth.db",
    "/proc/self/environ",
    "a%00b",
)


@dataclass(frozen=True)
class Answer:
    entry: str
    what: str
    status: int  # 0: no HTTP answer at all
    body: str

    def problems(self) -> list[str]:
        found = []
        if self.status == 0:
            found.append(f"no answer: {self.body[:200]}")
        elif self.status >= 500 and not SERVER_REFERENCE.match(_detail(self.body)):
            found.append(f"HTTP {self.status} without a sentence: {self.body[:200]}")
        if match := PYTHON_WORDS.search(self.body):
            found.append(
                f"Python's words: …{self.body[max(match.start() - 60, 0) : match.end() + 60]}…"
            )
        return found


def _detail(body: str) -> str:
    try:
        return str(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        return ""


def _body(event: int, **fields: Any) -> bytes:
    body = {"data": [], "fn_index": event, "session_hash": secrets.token_hex(8),
            "event_data": None, "trigger_id": None} | fields  # fmt: skip
    return json.dumps(body).encode()


def requests_to_send(header_fn: int) -> Iterator[tuple[str, str, Callable[[httpx.Client], Any]]]:
    """(entry point, what, send) for every hostile request of this family."""
    join = "/gradio_api/queue/join"

    def post(path: str, content: bytes, headers: dict[str, str] = JSON):
        return lambda client: client.post(path, content=content, headers=headers)

    deep = b"[" * 100_000 + b"]" * 100_000
    for what, content in {
        "not JSON": b"{nope",
        "empty body": b"",
        "nested 100,000 deep": deep,
        "data nested 100,000 deep": b'{"data": ' + deep + b', "fn_index": 0, "session_hash": "x"}',
        "a JSON list": b"[1, 2]",
        "10 MB of data": _body(header_fn, data=["x" * 10_000_000]),
    }.items():
        yield join, what, post(join, content)
    for field in ("fn_index", "data", "session_hash", "event_data", "trigger_id"):
        for name, value in (HOSTILE | ROW_ONLY).items():
            yield join, f"{field}={name}", post(join, _body(header_fn, **{field: value}))
    for field in ("username", "password"):
        for name, value in TEXT_VALUES.items():
            form = {"username": "nobody", "password": "wrong-pass-1"} | {field: value}
            yield (
                "/login",
                f"{field}={name}",
                lambda c, form=form: c.post("/login", data=form, headers=CLOSE),
            )
        raw = (
            b"username=%ED%A0%80&password=p" if field == "username" else b"username=x&password=%FF"
        )
        yield "/login", f"{field}=undecodable bytes", post("/login", raw, FORM)
    yield "/login", "a JSON body", post("/login", b'{"username": ["x"]}')
    yield "/login", "nested 100,000 deep", post("/login", deep)
    for path in TRAVERSALS:
        yield (
            "/gradio_api/file=",
            path,
            lambda c, p=path: c.get(f"/gradio_api/file={p}", headers=CLOSE),
        )
    for name in ("../../evil.txt", "/etc/evil.txt", "a\x00b.json", "\udcff.json", "x" * 5000):
        files = {"files": (name.encode("utf-8", "surrogateescape").decode("latin-1"), b"{}")}
        yield (
            "/gradio_api/upload",
            f"file name {name[:20]!r}",
            lambda c, f=files: c.post("/gradio_api/upload", files=f),
        )
    call = "/gradio_api/call/chat"
    for name, value in (HOSTILE | ROW_ONLY).items():
        yield call, f"data={name}", post(call, json.dumps({"data": value}).encode())
    yield call, "nested 100,000 deep", post(call, deep)
    yield from _session_hash_requests()


def _session_hash_requests() -> Iterator[tuple[str, str, Callable[[httpx.Client], Any]]]:
    """GETs that name a page session: the queue's stream, and Gradio's deep-link route, which
    builds a session's components when asked (ui.gradio_sessions)."""
    for name, value in TEXT_VALUES.items():
        if name != "1e6 chars":  # a URL cannot carry it
            yield (
                "/gradio_api/queue/data",
                f"session_hash={name}",
                lambda c, v=value: c.get(
                    "/gradio_api/queue/data", params={"session_hash": v}, timeout=5
                ),
            )
            yield (
                "/gradio_api/deep_link",
                f"session_hash={name}",
                lambda c, v=value: c.get(
                    "/gradio_api/deep_link", params={"session_hash": v}, headers=CLOSE
                ),
            )
    link = "/gradio_api/deep_link"
    yield link, "no session_hash", lambda c: c.get(link, headers=CLOSE)
    yield link, "session_hash twice", lambda c: c.get(f"{link}?session_hash=a&session_hash=b")
    yield link, "60 KB session_hash", lambda c: c.get(link, params={"session_hash": "x" * 60_000})


def _send(client: httpx.Client, entry: str, what: str, request: Callable) -> Answer:
    try:
        response = request(client)
        return Answer(entry, what, response.status_code, response.text[:100_000])
    except httpx.ReadTimeout:  # a stream that waits for events that never come: fine
        return Answer(entry, what, 200, "")
    except (httpx.HTTPError, UnicodeError) as exc:
        return Answer(entry, what, 0, f"{type(exc).__name__}: {exc}")


@dataclass
class Batch:
    answers: list[Answer]
    bystander: tuple[float, bool]
    rss_max: int
    killed: bool
    integrity: list[str]
    changed_rows: list[str]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    data_dir: Path = tmp_path_factory.mktemp("hostile-requests")
    with hostile_app(data_dir) as (app, watchdog):
        db = data_dir / "hearth.db"
        before = snapshot(db)
        staff = GradioHTTP(app.url, "staff", PASSWORDS["staff"])
        anonymous = GradioHTTP(app.url)
        config = staff.config()
        header = next(d["id"] for d in config["dependencies"] if d["api_name"] == "refresh_header")
        answers = [
            _send(http.client, entry, f"{role}: {what}", request)
            for role, http in (("anonymous", anonymous), ("staff", staff))
            for entry, what, request in requests_to_send(header)
        ]
        staff.close()
        anonymous.close()
        found = Batch(answers, bystander_check(app, config), watchdog.rss_max, watchdog.killed,
                      integrity(db), changed_since(before, snapshot(db)))  # fmt: skip
        tried = Counter(a.entry for a in answers)
        failing = Counter(a.entry for a in answers if a.problems())
        print("\nRequests below the events: tried (problems)")
        for entry, count in tried.items():
            print(f"  {entry:<28}{count:>5}  ({failing[entry]})")
        yield found


def test_every_request_gets_a_result_or_a_sentence(batch: Batch) -> None:
    problems = [f"{a.entry} [{a.what}]: {p}" for a in batch.answers for p in a.problems()]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


def test_no_file_outside_the_app_is_served(batch: Batch) -> None:
    served = [a for a in batch.answers if a.entry == "/gradio_api/file=" and a.status == 200]
    assert not served, [(a.what, a.body[:80]) for a in served]


def test_another_user_is_served_promptly_after_the_batch(batch: Batch) -> None:
    seconds, ok = batch.bystander
    assert ok, "the bystander could not sign in and get the header"
    assert seconds < 2.0, f"sign-in and header took {seconds:.1f} s"


def test_memory_stays_bounded(batch: Batch) -> None:
    assert not batch.killed, "the watchdog killed the app: resident memory passed 3 GiB"
    assert batch.rss_max < RSS_BOUND, f"peak RSS {batch.rss_max / GIB:.2f} GiB"


def test_the_database_is_intact_and_old_rows_are_unchanged(batch: Batch) -> None:
    assert batch.integrity == []
    assert batch.changed_rows == []
