"""Test doubles for the boundaries Hearth does not own: NVML and a chat engine.

`FakeNvml` stands in for the NVIDIA driver behind backend's Nvml protocol. `ScriptedEngine`
is a chat engine whose replies are queued by the test (like llm's MockModel.enqueue) and
streamed at a set token rate, for tests and benchmarks of the path around an engine. Its
models count as loaded (admission has nothing to estimate), a closed `gate` holds every reply
before its first word, and `wait_for_requests` lets a test wait for turns to reach it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    EngineStatus,
    EngineUnavailable,
    InstalledModel,
    LoadedModel,
    ModelFactsUnavailable,
    ModelNotFound,
)
from backend.hardware.nvml import NvmlError, NvmlMemory, NvmlProcess

GIB = 1024**3


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-0000"
    total_bytes: int = 80 * GIB
    used_bytes: int = 20 * GIB
    util_pct: tuple[int, int] = (42, 17)
    temperature_c: int = 55
    power_draw_w: float = 310.5
    power_limit_w: float = 700.0
    bus_width_bits: int = 5120
    max_memory_clock_mhz: int = 2619
    processes: list[NvmlProcess] = field(default_factory=list)
    broken: frozenset[str] = frozenset()  # method names that raise NvmlError


class FakeNvml:
    """Stands in for the NVIDIA driver: only the Nvml protocol, driven by FakeGpu values."""

    def __init__(self, gpus: list[FakeGpu], init_error: str = "") -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0
        self.memory_calls = 0
        self.process_calls = 0

    def init(self) -> None:
        self.init_calls += 1
        if self.init_error:
            raise NvmlError(self.init_error)

    def shutdown(self) -> None:
        self.shutdown_calls += 1

    def driver_version(self) -> str:
        return "550.54.15"

    def cuda_driver_version(self) -> str:
        return "12.4"

    def device_count(self) -> int:
        return len(self.gpus)

    def _gpu(self, index: int, call: str) -> FakeGpu:
        gpu = self.gpus[index]
        if call in gpu.broken:
            raise NvmlError("Not Supported")
        return gpu

    def name(self, index: int) -> str:
        return self._gpu(index, "name").name

    def uuid(self, index: int) -> str:
        return self._gpu(index, "uuid").uuid

    def memory(self, index: int) -> NvmlMemory:
        self.memory_calls += 1
        gpu = self._gpu(index, "memory")
        return NvmlMemory(gpu.total_bytes, gpu.used_bytes, gpu.total_bytes - gpu.used_bytes)

    def utilization_pct(self, index: int) -> tuple[int, int]:
        return self._gpu(index, "utilization_pct").util_pct

    def temperature_c(self, index: int) -> int:
        return self._gpu(index, "temperature_c").temperature_c

    def power_draw_w(self, index: int) -> float:
        return self._gpu(index, "power_draw_w").power_draw_w

    def power_limit_w(self, index: int) -> float:
        return self._gpu(index, "power_limit_w").power_limit_w

    def memory_bus_width_bits(self, index: int) -> int:
        return self._gpu(index, "memory_bus_width_bits").bus_width_bits

    def max_memory_clock_mhz(self, index: int) -> int:
        return self._gpu(index, "max_memory_clock_mhz").max_memory_clock_mhz

    def processes(self, index: int) -> list[NvmlProcess]:
        self.process_calls += 1
        return self._gpu(index, "processes").processes


@dataclass
class ScriptedEngine:
    """A chat engine that streams queued replies, word by word, at tokens_per_s."""

    models: tuple[str, ...] = ("scripted:1b",)
    tokens_per_s: float = 0.0  # 0: as fast as the consumer reads
    name: str = "scripted"
    default_reply: str = "This is a scripted reply."
    replies: deque[str | EngineError] = field(default_factory=deque)
    requests: list[tuple[str, tuple[ChatMessage, ...], ChatOptions]] = field(default_factory=list)
    gate: threading.Event | None = None  # when given, replies wait for it before their first word
    listing: bool = True  # False: list_models fails as an unreachable engine's does
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def enqueue(self, *replies: str | EngineError) -> None:
        """Queue replies (an EngineError is raised by the chat that takes it instead)."""
        self.replies.extend(replies)

    def wait_for_requests(self, count: int, timeout_s: float = 30) -> bool:
        """Block until `count` chats have reached the engine (True), or the timeout passed."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) >= count, timeout_s)

    def asked(self) -> list[str]:
        """The last message of every chat request, in the order they reached the engine."""
        with self._changed:
            return [messages[-1].content for _, messages, _ in self.requests]

    def status(self) -> EngineStatus:
        return EngineStatus(self.name, True, "scripted test engine", "0")

    def list_models(self) -> list[InstalledModel]:
        if not self.listing:
            raise EngineUnavailable("the scripted engine does not list its models now")
        return [InstalledModel(name, 1 << 20) for name in self.models]

    def show(self, model: str) -> object:
        raise ModelFactsUnavailable(f"the scripted engine does not describe {model}")

    def loaded_models(self) -> list[LoadedModel]:
        return [LoadedModel(name, 1 << 20, 1 << 20) for name in self.models]

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        if model not in self.models:
            raise ModelNotFound(model)
        with self._changed:
            self.requests.append((model, tuple(messages), options))
            reply = self.replies.popleft() if self.replies else self.default_reply
            self._changed.notify_all()
        return self._stream(reply, options, cancel)

    def _stream(
        self, reply: str | EngineError, options: ChatOptions, cancel: threading.Event | None
    ) -> Iterator[ChatDelta | ChatStats]:
        if isinstance(reply, EngineError):
            raise reply
        while self.gate is not None and not self.gate.wait(0.05):
            if cancel is not None and cancel.is_set():
                yield ChatStats("cancelled", prompt_tokens=1, reply_tokens=0)
                return
        words = reply.split(" ")
        if options.num_predict:
            words = words[: options.num_predict]
        start = time.monotonic()
        sent = 0
        for index, word in enumerate(words):
            if cancel is not None and cancel.is_set():
                yield ChatStats("cancelled", prompt_tokens=1, reply_tokens=sent)
                return
            if self.tokens_per_s:
                time.sleep(max(start + index / self.tokens_per_s - time.monotonic(), 0))
            yield ChatDelta(word if index == 0 else " " + word)
            sent += 1
        elapsed_ms = (time.monotonic() - start) * 1000
        yield ChatStats("stop", prompt_tokens=1, reply_tokens=sent, total_ms=elapsed_ms)
