"""The chat's Prometheus metrics, in the registry Services owns (served at /metrics).

    hearth_chat_requests_total{model,status}      turns, by how they ended: complete, stopped,
                                                  error (a reply row was written for each);
                                                  left (stopped while waiting in line), busy
                                                  (the line was full), limited (over a limit):
                                                  nothing was written for these three
    hearth_chat_queue_depth                       turns waiting in the fair line now
    hearth_chat_running                           turns holding one of the engine's slots now
    hearth_chat_queue_wait_seconds                time from joining the line to a slot, per turn
    hearth_chat_time_to_first_token_seconds       time from the turn's arrival (queue wait
                                                  included: what the person waits) to its
                                                  first token
    hearth_chat_tokens_total{model,direction}     prompt and reply tokens, as the engine counted

Labels never carry a user's name; `model` is a name from the engine's own list ("unverified"
when the engine could not list its models for the turn), so its values stay few.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from backend.chat.fair_line_values import LineStats

REQUEST_STATUSES = ("complete", "stopped", "error", "left", "busy", "limited")
UNVERIFIED_MODEL = "unverified"
# Waits and first tokens range from milliseconds (a free slot) to minutes (a long line).
WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)


class ChatMetrics:
    """Counters, gauges and histograms of chat turns; thread-safe (prometheus_client's own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "hearth_chat_requests",
            "Chat turns by model and how they ended.",
            ["model", "status"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "hearth_chat_queue_depth", "Chat turns waiting in the fair line.", registry=registry
        )
        self.running = Gauge(
            "hearth_chat_running", "Chat turns holding an engine slot.", registry=registry
        )
        self.queue_wait = Histogram(
            "hearth_chat_queue_wait_seconds",
            "Seconds a chat turn waited in the fair line before its engine slot.",
            buckets=WAIT_BUCKETS_S,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "hearth_chat_time_to_first_token_seconds",
            "Seconds from a chat turn's arrival (queue wait included) to its first token.",
            buckets=TTFT_BUCKETS_S,
            registry=registry,
        )
        self.tokens = Counter(
            "hearth_chat_tokens",
            "Prompt and reply tokens of chat turns, as the engine counted them.",
            ["model", "direction"],
            registry=registry,
        )

    def watch(self, stats: Callable[[], LineStats]) -> None:
        """Read the line's depth and running turns at each scrape (FairLine.stats)."""
        self.queue_depth.set_function(lambda: stats().waiting)
        self.running.set_function(lambda: stats().running)

    def observe_wait(self, seconds: float) -> None:
        """FairLine's on_wait: a turn got its slot after waiting this long."""
        self.queue_wait.observe(max(seconds, 0.0))

    def first_token(self, seconds: float) -> None:
        self.time_to_first_token.observe(max(seconds, 0.0))

    def ended(self, model: str, status: str) -> None:
        """Count one turn by how it ended (one of REQUEST_STATUSES)."""
        self.requests.labels(model=model, status=status).inc()

    def add_tokens(self, model: str, prompt_tokens: int | None, reply_tokens: int | None) -> None:
        if prompt_tokens:
            self.tokens.labels(model=model, direction="prompt").inc(prompt_tokens)
        if reply_tokens:
            self.tokens.labels(model=model, direction="reply").inc(reply_tokens)
