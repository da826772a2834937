"""GPU memory metrics from the real NVML path (skipped cleanly without an NVIDIA GPU)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from backend.engines.embedded import EmbeddedEngine
from backend.hardware.monitor import HardwareMonitor
from backend.ops.metrics import OpsMetrics, exposition

pytestmark = pytest.mark.gpu


def test_each_gpu_has_used_free_and_total_bytes_as_nvml_reports_them(tmp_path):
    with HardwareMonitor(tmp_path, tmp_path / "models") as monitor:
        snapshot = monitor.snapshot()
        if not snapshot.has_gpu:
            pytest.skip(f"no NVIDIA GPU: {snapshot.nvml_reason}")
        registry = CollectorRegistry()
        OpsMetrics(registry, lambda: EmbeddedEngine(tmp_path / "models"), monitor)
        monitor.sample_now()
        body, _ = exposition(registry)
    samples = {
        (s.name, s.labels.get("gpu")): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    for gpu in snapshot.gpus:
        index = str(gpu.index)
        total = samples[("hearth_gpu_memory_total_bytes", index)]
        used = samples[("hearth_gpu_memory_used_bytes", index)]
        free = samples[("hearth_gpu_memory_free_bytes", index)]
        assert total == gpu.vram_total_bytes
        assert used >= 0 and free >= 0 and used + free <= total  # NVML may also reserve some
