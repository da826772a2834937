"""Hostile values for every Gradio event, sent the way a script can send them, and what came back.

Calls go to /gradio_api/queue/join by fn_index with a JSON body written by json.dumps (so a
lone surrogate travels as the escape "\\ud800" and inf/nan as Infinity/NaN, both of which a
Python server reads back), then the event's server-sent events are read like the page does.
An outcome is fine when it is a normal result or an error with a sentence; it is a problem
when the page would show a bare "Error", Python's own words, or the stream breaks.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.gradio_http import GradioHTTP


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# Sent in each input position in turn (the others keep plausible values).
HOSTILE: dict[str, Any] = {
    "1e6 chars": "x" * 1_000_000,
    "10**30": 10**30,
    "-1": -1,
    '"Infinity"': "Infinity",
    '"NaN"': "NaN",
    "inf": float("inf"),
    '"abc"': "abc",
    '"2.5"': "2.5",
    "list": [1, 2],
    "dict": {"a": 1},
    "None": None,
    "True": True,
    "NUL": "a\x00b",
    "lone surrogate": "\ud800",
    "path traversal": "../../etc/passwd",
    "HTML": "<img src=x onerror=alert(1)>",
}
# Sent only as a whole row (every position at once).
ROW_ONLY: dict[str, Any] = {"nan": float("nan"), "nested 64 deep": nested(64)}

PYTHON_WORDS = re.compile(
    r"Traceback|invalid literal|could not convert|has no attribute|not subscriptable|"
    r"unsupported operand|codec can't|surrogates not allowed|object is not|positional argument|"
    r"keyword argument|NoneType|\[Errno|index out of range|KeyError|ValueError|TypeError|"
    r"AttributeError|OverflowError|RecursionError|cannot convert float|too large to convert|"
    r"maximum recursion|validation error for|pydantic|gradio\.exceptions|File \""
)
SERVER_REFERENCE = re.compile(r"^Something went wrong on the server \(ref [0-9a-f]{6}\)")
LONGEST_MESSAGE = 1000  # a toast that echoes a megabyte of input is not a sentence


@dataclass(frozen=True)
class Outcome:
    """What one call produced, as the page would see it."""

    kind: str  # "result", "error" (the event failed), "refused" (HTTP status), "broken"
    message: str = ""  # the error, the refusal body, or why the stream broke
    toasts: tuple[str, ...] = ()
    output: str = ""  # the output data as JSON text

    @property
    def server_error(self) -> bool:
        """The catch-all: an unexpected exception, logged with a reference."""
        return self.kind == "error" and bool(SERVER_REFERENCE.match(self.message))

    def problems(self) -> list[str]:
        found = []
        if self.kind == "broken":
            found.append(f"the event stream broke: {self.message[:200]}")
        if self.kind == "error" and not self.message.strip():
            found.append('a bare "Error" (no message)')
        if self.kind == "refused" and self.message.startswith("5"):
            found.append(f"HTTP {self.message[:200]}")
        shown = self.toasts if self.kind == "broken" else (self.message, *self.toasts)
        for text in (*shown, self.output):  # a broken stream's message is the client's own
            if match := PYTHON_WORDS.search(text):
                start = max(match.start() - 60, 0)
                found.append(f"Python's words: …{text[start : match.end() + 60]}…")
        for text in (self.message, *self.toasts):
            if len(text) > LONGEST_MESSAGE:
                found.append(f"a {len(text):,}-character message: {text[:80]}…")
        return found


def send(
    http: GradioHTTP, fn_index: int, data: list[Any], session_hash: str | None = None
) -> Outcome:
    """Run one event to completion with exactly these values."""
    session = session_hash or secrets.token_hex(8)
    body = {"data": data, "fn_index": fn_index, "session_hash": session,
            "event_data": None, "trigger_id": None}  # fmt: skip
    headers = {"content-type": "application/json"}
    try:
        joined = http.client.post(
            "/gradio_api/queue/join", content=json.dumps(body), headers=headers
        )
        if joined.status_code != 200:
            return Outcome("refused", f"{joined.status_code} {joined.text[:2000]}")
        return _read_events(http, session)
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        return Outcome("broken", f"{type(exc).__name__}: {exc}")


def _read_events(http: GradioHTTP, session: str) -> Outcome:
    toasts: list[str] = []
    params = {"session_hash": session}
    with http.client.stream("GET", "/gradio_api/queue/data", params=params) as response:
        if response.status_code != 200:
            return Outcome("refused", f"{response.status_code} stream")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            kind = message.get("msg")
            if kind == "log":
                toasts.append(str(message.get("log") or ""))
            elif kind == "unexpected_error":
                return Outcome("broken", str(message.get("message")), tuple(toasts))
            elif kind == "process_completed":
                output = message.get("output") or {}
                if message.get("success", True):
                    return Outcome("result", "", tuple(toasts), json.dumps(output.get("data")))
                return Outcome("error", str(output.get("error") or ""), tuple(toasts))
    return Outcome("broken", "the stream ended before the event completed", tuple(toasts))


# -- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    fn_index: int
    api_name: str
    input_types: tuple[str, ...]

    @property
    def group(self) -> tuple[str, tuple[str, ...]]:
        """Events wired to one function share a base name (chat_list, chat_list_1, ...)."""
        return re.sub(r"_\d+$", "", self.api_name), self.input_types

    @property
    def open_positions(self) -> list[int]:
        """Positions whose value the server reads from the request (a gr.State's it does not)."""
        return [i for i, kind in enumerate(self.input_types) if kind != "state"]


def endpoints(config: dict[str, Any]) -> list[Endpoint]:
    """Every event with a Python function, from the page config."""
    types = {c["id"]: c["type"] for c in config["components"]}
    return [
        Endpoint(d["id"], d["api_name"], tuple(types[i] for i in d["inputs"]))
        for d in config["dependencies"]
        if d.get("backend_fn")
    ]


TYPE_DEFAULTS: dict[str, Any] = {"textbox": "", "number": 0, "slider": 0, "checkbox": False,
                                 "chatbot": [], "dataset": 0, "datetime": ""}  # fmt: skip


def plausible(endpoint: Endpoint, config: dict[str, Any], overrides: dict[str, Any]) -> list[Any]:
    """Each input's initial value from the config, then the family's overrides by position."""
    dependency = next(d for d in config["dependencies"] if d["id"] == endpoint.fn_index)
    props = {c["id"]: c.get("props", {}) for c in config["components"]}
    values = []
    for component_id, kind in zip(dependency["inputs"], endpoint.input_types, strict=True):
        value = props[component_id].get("value")
        values.append(value if value is not None else TYPE_DEFAULTS.get(kind))
    for position, value in overrides.get(endpoint.group[0], {}).items():
        values[position] = value() if callable(value) else value
    return values


@dataclass(frozen=True)
class Attempt:
    role: str
    api_name: str
    values: str  # which hostile value, and where
    outcome: Outcome
    seconds: float


@dataclass
class Matrix:
    attempts: list[Attempt] = field(default_factory=list)
    app_died: str = ""  # the attempt after which the app was gone, if it went

    def add(self, role: str, endpoint: Endpoint, what: str, outcome: Outcome, s: float) -> None:
        self.attempts.append(Attempt(role, endpoint.api_name, what, outcome, s))

    def problems(self) -> list[str]:
        return [f"{a.role} {a.api_name} [{a.values}]: {p}"
                for a in self.attempts for p in a.outcome.problems()]  # fmt: skip

    def server_errors(self) -> list[str]:
        return [f"{a.role} {a.api_name} [{a.values}]"
                for a in self.attempts if a.outcome.server_error]  # fmt: skip

    def table(self) -> str:
        """Inputs tried per entry point and role, and how they ended."""
        tried: Counter[tuple[str, str]] = Counter()
        ends: dict[str, Counter[str]] = {}
        seconds: dict[str, float] = {}
        for a in self.attempts:
            tried[a.api_name, a.role] += 1
            seconds[a.api_name] = seconds.get(a.api_name, 0.0) + a.seconds
            end = "problem" if a.outcome.problems() else _end(a.outcome)
            ends.setdefault(a.api_name, Counter())[end] += 1
        rows = [f"{'entry point':<24}{'anon':>6}{'staff':>6}{'admin':>6}  {' '.join(_ENDS)}  s"]
        for name, counts in ends.items():
            by_role = "".join(f"{tried[name, role]:>6}" for role in ("anonymous", "staff", "admin"))
            ended = " ".join(f"{counts[k]:>{len(k)}}" for k in _ENDS)
            rows.append(f"{name:<24}{by_role}  {ended}  {seconds[name]:.0f}")
        total = sum(seconds.values())
        rows.append(f"{'total':<24}{len(self.attempts):>18}  in {total:.0f} s")
        return "\n".join(rows)


_ENDS = ("result", "sentence", "ref", "refused", "problem")


def _end(outcome: Outcome) -> str:
    if outcome.kind == "error":
        return "ref" if outcome.server_error else "sentence"
    return outcome.kind


def rows_for(
    endpoint: Endpoint, defaults: list[Any], per_position: bool
) -> Iterable[tuple[str, list[Any]]]:
    """(description, values) to send: each hostile value in each open position, or whole rows."""
    if per_position:
        for position in endpoint.open_positions:
            for name, value in HOSTILE.items():
                row = list(defaults)
                row[position] = value
                yield f"{name} at {position}", row
    for name, value in (HOSTILE | ROW_ONLY).items():
        if per_position and name in HOSTILE and endpoint.open_positions:
            continue  # already sent in every position
        yield f"{name} everywhere", [value] * max(len(endpoint.input_types), 1)


def run_role(
    matrix: Matrix,
    role: str,
    http: GradioHTTP,
    chosen: list[Endpoint],
    defaults: Callable[[Endpoint], list[Any]],
    per_position: Callable[[Endpoint], bool],
    alive: Callable[[], bool],
    session: str | None = None,
    before_each: dict[str, int] | None = None,
) -> None:
    """Send every row for every endpoint in one page session, in order; stop if the app dies.

    before_each maps a group to an event sent first (e.g. "New chat", so each turn starts fresh
    instead of evaluating an ever longer history).
    """
    for endpoint in chosen:
        reset = (before_each or {}).get(endpoint.group[0])
        for what, row in rows_for(endpoint, defaults(endpoint), per_position(endpoint)):
            if reset is not None:
                send(http, reset, [], session)
            start = time.perf_counter()
            outcome = send(http, endpoint.fn_index, row, session)
            matrix.add(role, endpoint, what, outcome, time.perf_counter() - start)
            if outcome.kind == "broken" and not alive():
                matrix.app_died = f"{role} {endpoint.api_name} [{what}]"
                return
