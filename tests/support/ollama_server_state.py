"""TEST FIXTURE state and wire helpers for the Ollama protocol server (tests/support only).

Part of tests/support/ollama_server.py (a test fixture, never a product engine). Holds what a
real Ollama keeps on disk and in its scheduler, plus counters of what the server saw.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from backend.engines.base import ChatOptions, ChatStats

if TYPE_CHECKING:
    from tests.support.gguf_info import GGUFFacts

DEFAULT_KEEP_ALIVE = timedelta(minutes=5)
FOREVER = timedelta(microseconds=(2**63 - 1) // 1000)  # Go's maximum time.Duration
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip


class BadRequest(ValueError):
    """The request cannot be parsed; answered with HTTP 400 and this text."""


@dataclass
class FakeModel:
    """An installed model. Every one is served by the bundled GGUF unless model_info says else."""

    name: str
    size_bytes: int
    family: str
    parameter_size: str
    quantization: str
    modified_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    model_info: dict[str, Any] | None = None  # None: the bundled GGUF's metadata
    vram_bytes: int | None = None  # None: fully offloaded; less than the loaded size: partial
    load_error: str = ""  # answered with HTTP 500 when the model is loaded (e.g. OOM)
    stream_error: str = ""  # sent as an in-stream {"error": ...} line ...
    stream_error_after: int = 3  # ... after this many content chunks
    load_hold: threading.Event | None = None  # a load (no messages) waits until this is set

    @property
    def digest(self) -> str:
        """Content-addressed, as Ollama's are: other metadata is another file."""
        info = json.dumps(self.model_info, sort_keys=True, default=str)
        return hashlib.sha256(f"manifest/{self.name}/{info}".encode()).hexdigest()


@dataclass(frozen=True)
class RegistryTag:
    """A tag that /api/pull can fetch: its layers (only their sizes; nothing is downloaded)."""

    name: str
    layer_sizes: tuple[int, ...]
    family: str = "llama"
    parameter_size: str = ""
    quantization: str = "Q4_K_M"

    def layer_digest(self, index: int) -> str:
        return "sha256:" + hashlib.sha256(f"{self.name}/layer/{index}".encode()).hexdigest()


@dataclass(frozen=True)
class LoadedEntry:
    name: str
    num_ctx: int
    size_bytes: int
    vram_bytes: int
    expires_at: datetime


@dataclass
class ServerEvents:
    """What the server saw; tests wait on these instead of sleeping."""

    chat_requests: int = 0
    chat_disconnects: int = 0  # a client closed a chat stream before it was done
    chunks_streamed: int = 0  # content chunks written in the last chat
    pull_disconnects: int = 0  # a client closed a pull stream before it was done
    pulls_completed: int = 0
    busy_refusals: int = 0  # chats answered 503 "server busy" (OLLAMA_MAX_QUEUE full)
    loads_held: int = 0  # loads waiting on their model's load_hold


def normalise_name(name: str) -> str:
    """Ollama's names: case-insensitive, `:latest` when no tag is given."""
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def parse_keep_alive(value: Any) -> timedelta | None:
    """api.Duration: a number of seconds or a Go duration string; negative means forever."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest(f"json: cannot unmarshal bool into keep_alive: {value}")
    if isinstance(value, int | float):
        return FOREVER if value < 0 else timedelta(seconds=value)
    text = str(value).strip()
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if body == "0":
        return timedelta(0)
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise BadRequest(f'time: invalid duration "{text}"')
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return FOREVER if sign < 0 else timedelta(seconds=seconds)


def go_json(value: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, UTF-8, HTML characters escaped, floats
    without exponent between 1e-6 and 1e21 (0.00001, 500000)."""
    return _go_json(value).encode()


def _go_json(value: Any) -> str:
    if isinstance(value, dict):
        items = (f"{_go_string(str(k))}:{_go_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, float) and math.isfinite(value):
        if value != 0 and not 1e-6 <= abs(value) < 1e21:
            return repr(value)
        return format(Decimal(repr(value)).normalize(), "f")
    return json.dumps(value)


def _go_string(text: str) -> str:
    text = json.dumps(text, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_time(moment: datetime) -> str:
    """RFC 3339 with trailing zeros of the fraction dropped, as Go's time.Time marshals."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def chat_options(options: dict[str, Any]) -> ChatOptions:
    """A request's `options` as the generator backend takes them (Ollama's defaults)."""
    num_predict = options.get("num_predict")
    return ChatOptions(
        temperature=float(options.get("temperature", 0.8)),  # Ollama's default
        num_ctx=int(options.get("num_ctx") or 4096),
        num_predict=int(num_predict) if num_predict is not None and num_predict >= 0 else None,
        seed=int(options["seed"]) if options.get("seed") is not None else None,
        top_p=float(options["top_p"]) if options.get("top_p") is not None else None,
        stop=tuple(str(s) for s in options.get("stop") or ()),
    )


def final_metrics(stats: ChatStats | None, started: float) -> dict[str, Any]:
    """The final chunk's fields, in nanoseconds as Ollama reports them."""
    total_ns = int((time.perf_counter() - started) * 1e9)
    if stats is None:
        return {"done_reason": "stop", "total_duration": total_ns}
    load_ns = int((stats.load_ms or 0.0) * 1e6) or 1
    eval_ns = 0
    if stats.reply_tokens and stats.tokens_per_s:
        eval_ns = int(stats.reply_tokens / stats.tokens_per_s * 1e9)
    prompt_ns = int(max((stats.ttft_ms or 0.0) - (stats.load_ms or 0.0), 0.0) * 1e6)
    return {
        "done_reason": "stop" if stats.done_reason == "cancelled" else stats.done_reason,
        "total_duration": total_ns,
        "load_duration": load_ns,
        "prompt_eval_count": stats.prompt_tokens or 0,
        "prompt_eval_duration": prompt_ns,
        "eval_count": stats.reply_tokens or 0,
        "eval_duration": eval_ns,
    }


TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def show_reply(model: FakeModel, details: dict, facts: GGUFFacts, verbose: bool) -> dict:
    """/api/show's body for a model, in Go's field order; verbose adds the file's tensors."""
    info = model.model_info if model.model_info is not None else facts.model_info
    if verbose and model.model_info is None:
        info = facts.verbose_model_info or info
    reply: dict[str, Any] = {
        "license": "Apache License\nVersion 2.0, January 2004",
        "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model.name}\n',
        "parameters": 'stop                           "<|im_end|>"',
        "template": TEMPLATE,
        "details": details,
        "model_info": dict(sorted(info.items())),
    }
    if verbose and model.model_info is None:
        # api.ShowResponse.Tensors (omitempty, after model_info), filled for verbose
        # requests: the file's tensors as {name, type, shape}; made-up model_info has none
        reply["tensors"] = list(facts.tensors)
    reply["capabilities"] = ["completion"]
    reply["modified_at"] = go_time(model.modified_at)
    return reply


class ServerState:
    """Everything the fake Ollama knows, behind one lock; a condition wakes waiting tests."""

    def __init__(self, kv_bytes_per_token: Callable[[FakeModel], int]) -> None:
        self._kv_bytes_per_token = kv_bytes_per_token
        self._changed = threading.Condition()
        self.models: dict[str, FakeModel] = {}
        self.registry: dict[str, RegistryTag] = {}
        self.loaded: dict[str, LoadedEntry] = {}
        self.events = ServerEvents()
        self.busy_left = 0  # the next this many chats are refused as Ollama's full queue does

    def reset(self, models: Iterable[FakeModel], registry: Iterable[RegistryTag]) -> None:
        with self._changed:
            self.models = {normalise_name(m.name): m for m in models}
            self.registry = {normalise_name(t.name): t for t in registry}
            self.loaded = {}
            self.events = ServerEvents()
            self.busy_left = 0
            self._changed.notify_all()

    # -- models --------------------------------------------------------------------------

    def find(self, name: str) -> FakeModel | None:
        with self._changed:
            return self.models.get(normalise_name(name))

    def install(self, model: FakeModel) -> FakeModel:
        with self._changed:
            self.models[normalise_name(model.name)] = model
            self._changed.notify_all()
        return model

    def all_models(self) -> list[FakeModel]:
        with self._changed:
            return list(self.models.values())

    def add_tag(self, tag: RegistryTag) -> None:
        with self._changed:
            self.registry[normalise_name(tag.name)] = tag

    def find_tag(self, name: str) -> RegistryTag | None:
        with self._changed:
            return self.registry.get(normalise_name(name))

    def remove(self, name: str) -> bool:
        key = normalise_name(name)
        with self._changed:
            self.loaded.pop(key, None)
            found = self.models.pop(key, None) is not None
            self._changed.notify_all()
            return found

    def install_from_registry(self, tag: RegistryTag) -> FakeModel:
        existing = self.find(tag.name)
        model = FakeModel(
            name=normalise_name(tag.name),
            size_bytes=sum(tag.layer_sizes),
            family=tag.family,
            parameter_size=tag.parameter_size,
            quantization=tag.quantization,
        )
        if existing is not None:  # keep test settings such as vram_bytes on a re-pull
            model = replace(existing, size_bytes=model.size_bytes, modified_at=model.modified_at)
        return self.install(model)

    # -- scheduler -----------------------------------------------------------------------

    def mark_loaded(self, model: FakeModel, num_ctx: int, keep_alive: timedelta | None) -> None:
        size = model.size_bytes + self._kv_bytes_per_token(model) * num_ctx
        vram = size if model.vram_bytes is None else min(model.vram_bytes, size)
        now = datetime.now(UTC)
        alive = keep_alive if keep_alive is not None else DEFAULT_KEEP_ALIVE
        expires = now + min(alive, timedelta(days=365 * 5000))  # stays inside datetime's range
        entry = LoadedEntry(normalise_name(model.name), num_ctx, size, vram, expires)
        with self._changed:
            self.loaded[entry.name] = entry
            self._changed.notify_all()

    def unload(self, name: str) -> None:
        with self._changed:
            self.loaded.pop(normalise_name(name), None)
            self._changed.notify_all()

    def running(self) -> list[LoadedEntry]:
        """Loaded models that have not expired, longest remaining first (as /api/ps sorts)."""
        now = datetime.now(UTC)
        with self._changed:
            self.loaded = {k: e for k, e in self.loaded.items() if e.expires_at > now}
            return sorted(self.loaded.values(), key=lambda e: e.expires_at, reverse=True)

    def set_busy(self, times: int) -> None:
        with self._changed:
            self.busy_left = times

    def take_busy(self) -> bool:
        """Whether this chat is refused as busy (counted); uses up one of busy_left."""
        with self._changed:
            if self.busy_left <= 0:
                return False
            self.busy_left -= 1
            self.events.busy_refusals += 1
            self._changed.notify_all()
            return True

    # -- events --------------------------------------------------------------------------

    def record(self, **increments: int) -> None:
        with self._changed:
            for name, amount in increments.items():
                setattr(self.events, name, getattr(self.events, name) + amount)
            self._changed.notify_all()

    def set_event(self, name: str, value: int) -> None:
        with self._changed:
            setattr(self.events, name, value)
            self._changed.notify_all()

    def wait_until(self, predicate: Callable[[ServerEvents], bool], timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.events), timeout=timeout_s)
