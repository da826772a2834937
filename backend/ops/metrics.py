"""Operator metrics in one prometheus_client registry: engines up and their chats in flight, GPU
memory, model loads, process.

Collectors read live values at scrape time: the engine's status, and the hardware sampler's
newest sample (NVML is never read for a scrape; before the first sample there are no GPU
series). Model loads are counted as ModelService reports them. No label names a user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backend.engines.base import Engine
from backend.engines.pool import EnginePool
from backend.hardware.monitor import HardwareMonitor

LOAD_DECISIONS = ("admit", "warn", "refuse", "override")


class EngineUpCollector(Collector):
    """hearth_engine_up{engine} (1 when it answers, else 0) and
    hearth_engine_chats_in_flight{engine}: per engine of a pool, by its configured name, and
    its fallback as "fallback:<name>"; for a single engine, one series under its name."""

    def __init__(
        self, engine: Callable[[], Engine], chats_in_flight: Callable[[], int] | None = None
    ) -> None:
        self._engine = engine
        self._chats_in_flight = chats_in_flight  # a single engine's chats (the pool counts its own)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "hearth_engine_up", "Whether the chat engine answers (1) or not (0).", labels=["engine"]
        )
        chats = GaugeMetricFamily(
            "hearth_engine_chats_in_flight",
            "Chat replies streaming from the engine now.",
            labels=["engine"],
        )
        return up, chats

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        up_family, chats_family = self._families()
        for name, up, chats in self._rows(self._engine()):
            up_family.add_metric([name], 1.0 if up else 0.0)
            if chats is not None:
                chats_family.add_metric([name], float(chats))
        yield up_family
        yield chats_family

    def _rows(self, engine: Engine) -> list[tuple[str, bool, int | None]]:
        if isinstance(engine, EnginePool):
            return [(name, up, chats) for name, up, chats in engine.gauges()]
        try:
            status = engine.status()
            name, up = status.name, status.reachable
        except Exception:  # status() should not raise; a scrape must not fail for it
            name, up = str(getattr(engine, "name", "unknown")), False
        chats = self._chats_in_flight() if self._chats_in_flight is not None else None
        return [(name, up, chats)]


class GpuMemoryCollector(Collector):
    """hearth_gpu_memory_{used,free,total}_bytes{gpu} from the sampler's newest sample."""

    _HELP: ClassVar[dict[str, str]] = {
        "used": "GPU memory in use (all processes), bytes.",
        "free": "GPU memory free, bytes.",
        "total": "GPU memory in all, bytes.",
    }

    def __init__(self, hardware: HardwareMonitor) -> None:
        self._hardware = hardware

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            kind: GaugeMetricFamily(f"hearth_gpu_memory_{kind}_bytes", text, labels=["gpu"])
            for kind, text in self._HELP.items()
        }

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        history = self._hardware.history()
        per_gpu = history[-1].gpu_memory if history else ()
        for index, memory in enumerate(per_gpu):
            if memory is None:  # this GPU's read failed in that sample
                continue
            families["used"].add_metric([str(index)], memory.used_bytes)
            families["free"].add_metric([str(index)], memory.free_bytes)
            families["total"].add_metric([str(index)], memory.total_bytes)
        yield from families.values()


class OpsMetrics:
    """Registers the operator metrics in `registry`; model_load() counts one load decision."""

    def __init__(
        self,
        registry: CollectorRegistry,
        engine: Callable[[], Engine],
        hardware: HardwareMonitor,
        chats_in_flight: Callable[[], int] | None = None,
    ) -> None:
        registry.register(EngineUpCollector(engine, chats_in_flight))
        registry.register(GpuMemoryCollector(hardware))
        self._loads = Counter(
            "hearth_model_loads",
            "Model loads asked for by an admin, by admission decision "
            "(override: refused, loaded anyway).",
            ["decision"],
            registry=registry,
        )
        for decision in LOAD_DECISIONS:
            self._loads.labels(decision)  # every series from the start, at 0
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    def model_load(self, decision: str) -> None:
        if decision in LOAD_DECISIONS:  # a closed vocabulary: no unbounded label values
            self._loads.labels(decision).inc()


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
