"""One simulated person's chat turn, read the way the page reads it; and the same turn sent
straight to the engine double (the baseline).

The page's turn is the Chat tab's `chat_send` event called by fn_index on the user's own signed-in
session, its updates read from Gradio's SSE stream as a browser's EventSource gets them. The
first update carries every output in full; later ones carry Gradio's diffs, applied here as the
page's client does. From the updates come the moments that matter: the first "in line" notice,
the turn starting (the assistant's reply appears: the question is committed then, so the turn
is acknowledged), the first token, and each later piece of the reply.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.gradio_http import GradioHTTP

# Outputs of chat_send, in order: chatbot, message box, conversation id, notice, Send, Stop,
# then the sidebar (rows, ids, page, label).
CHATBOT, NOTICE = 0, 3
STATS_MARK = '\n\n<span class="reply-stats">'
IN_LINE = " in line · about "
BUSY = "busy: "
PER_USER_CAP = "You already have "


@dataclass(frozen=True)
class TurnResult:
    """How one turn went, in seconds since the run's start (None: it never got there)."""

    user: str
    question: str
    outcome: str  # served | busy | per_user | error
    detail: str = ""
    sent_at: float = 0.0
    first_in_line_at: float | None = None
    started_at: float | None = None  # the reply began: the question is committed
    first_token_at: float | None = None
    done_at: float | None = None
    reply_tokens: int = 0
    marks: tuple[tuple[float, int], ...] = ()  # (seconds, reply tokens so far)

    @property
    def acknowledged(self) -> bool:
        return self.started_at is not None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.sent_at

    @property
    def queue_wait_s(self) -> float:
        """From the first "in line" notice to the reply starting; 0 for a turn that never waited."""
        if self.first_in_line_at is None or self.started_at is None:
            return 0.0
        return self.started_at - self.first_in_line_at

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_at is None or len(self.marks) < 2:
            return None
        last_at, count = self.marks[-1]
        span = last_at - self.first_token_at
        return (count - 1) / span if span > 0 and count > 1 else None

    def tokens_by(self, moment: float) -> int:
        """Reply tokens this turn had delivered by `moment` (seconds since the run's start)."""
        served = 0
        for at, count in self.marks:
            if at > moment:
                break
            served = count
        return served


def apply_diff(value: Any, edits: list[Any]) -> Any:
    """Apply Gradio's streaming diff (["replace"|"append"|"add"|"delete", path, value] edits)."""
    for action, path, new in edits:
        value = _apply_edit(value, list(path), action, new)
    return value


def _apply_edit(target: Any, path: list[Any], action: str, new: Any) -> Any:
    if not path:
        return target + new if action == "append" else (None if action == "delete" else new)
    parent = target
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "replace":
        parent[last] = new
    elif action == "append":
        parent[last] += new
    elif action == "add" and isinstance(parent, list):
        parent.insert(last, new)
    elif action == "add":
        parent[last] = new
    elif action == "delete":
        del parent[last]
    else:
        raise ValueError(f"unknown diff action {action!r}")
    return target


def reply_text(chatbot: Any) -> str | None:
    """The assistant's reply so far (without the stats line), or None before the reply began."""
    if not isinstance(chatbot, list) or not chatbot:
        return None
    last = chatbot[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    content = last.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "").split(STATS_MARK, 1)[0]


@dataclass
class _PageTurn:
    """The state of one turn while its SSE updates arrive."""

    user: str
    question: str
    origin: float  # perf_counter() of the run's start
    sent_at: float = 0.0
    outputs: list[Any] | None = None
    first_in_line_at: float | None = None
    started_at: float | None = None
    first_token_at: float | None = None
    marks: list[tuple[float, int]] = field(default_factory=list)
    notice: str = ""

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def take(self, message: dict[str, Any]) -> None:
        data = (message.get("output") or {}).get("data")
        if data is None:
            return
        if self.outputs is None or message.get("msg") == "process_completed":
            self.outputs = json.loads(json.dumps(data))
        else:
            self.outputs = [apply_diff(v, e) for v, e in zip(self.outputs, data, strict=True)]
        at = self.now()
        notice = self.outputs[NOTICE]
        self.notice = notice if isinstance(notice, str) else ""
        if IN_LINE in self.notice and self.first_in_line_at is None:
            self.first_in_line_at = at
        text = reply_text(self.outputs[CHATBOT])
        if text is None:
            return
        self.started_at = self.started_at if self.started_at is not None else at
        count = len(text.split())
        if count and self.first_token_at is None:
            self.first_token_at = at
        if count and (not self.marks or self.marks[-1][1] != count):
            self.marks.append((at, count))

    def result(self, outcome: str, detail: str = "") -> TurnResult:
        return TurnResult(
            self.user, self.question, outcome, detail, self.sent_at, self.first_in_line_at,
            self.started_at, self.first_token_at, self.now(),
            self.marks[-1][1] if self.marks else 0, tuple(self.marks),
        )  # fmt: skip

    def outcome(self, final: dict[str, Any]) -> TurnResult:
        if final.get("msg") != "process_completed":
            return self.result("error", f"the stream ended without a result: {final}"[:300])
        if final.get("success") is False:
            error = (final.get("output") or {}).get("error")
            return self.result("error", f"the event failed: {error}")
        if self.started_at is not None:
            if self.notice.startswith("⚠"):
                return self.result("error", self.notice)
            return self.result("served")
        if BUSY in self.notice:
            return self.result("busy", self.notice)
        if PER_USER_CAP in self.notice:
            return self.result("per_user", self.notice)
        return self.result("error", f"no reply and no busy sentence: {self.notice!r}")


def page_turn(
    http: GradioHTTP, fn_index: int, session: str, data: list[Any], user: str, origin: float
) -> TurnResult:
    """Send one chat turn as the page does and read its SSE updates to the end."""
    turn = _PageTurn(user, str(data[0]), origin)
    turn.sent_at = turn.now()
    final: dict[str, Any] = {}
    try:
        for message in http.stream(fn_index, data, session):
            if message.get("msg") in ("process_generating", "process_completed"):
                turn.take(message)
            final = message
        return turn.outcome(final)
    except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
        return turn.result("error", f"{type(exc).__name__}: {exc}"[:300])


def direct_turn(
    client: httpx.Client, model: str, question: str, user: str, origin: float
) -> TurnResult:
    """The same question straight to the engine double's /api/chat, streamed (the baseline)."""
    turn = _PageTurn(user, question, origin)
    turn.sent_at = turn.now()
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": question}]}
    count, done = 0, False
    try:
        with client.stream("POST", "/api/chat", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.strip():
                    continue
                chunk = json.loads(line)
                if "error" in chunk:
                    return turn.result("error", str(chunk["error"]))
                text = (chunk.get("message") or {}).get("content") or ""
                count += len(text.split())
                at = turn.now()
                turn.started_at = turn.started_at if turn.started_at is not None else at
                if count and turn.first_token_at is None:
                    turn.first_token_at = at
                if text.strip():
                    turn.marks.append((at, count))
                done = bool(chunk.get("done"))
    except (httpx.HTTPError, ValueError) as exc:
        return turn.result("error", f"{type(exc).__name__}: {exc}"[:300])
    return turn.result("served" if done else "error", "" if done else "no final chunk")


def run_all(
    jobs: Sequence[tuple[str, str]], turn: Callable[[str, str], TurnResult], bound_s: float
) -> tuple[TurnResult, ...]:
    """Every job in its own thread, all at once; a job past the time bound is an error."""
    results: list[TurnResult | None] = [None] * len(jobs)

    def work(index: int, person: str, question: str) -> None:
        results[index] = turn(person, question)

    threads = [
        threading.Thread(target=work, args=(i, *job), daemon=True) for i, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + bound_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    late = "no result within the run's time bound"
    return tuple(
        r if r is not None else TurnResult(p, q, "error", late)
        for r, (p, q) in zip(results, jobs, strict=True)
    )
