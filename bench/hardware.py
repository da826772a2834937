"""Hardware monitor cost: one snapshot, one sampler tick, and the sampler left running.

    .venv/bin/python -m bench.hardware               # 20 s sampler window at the default 2 s
    .venv/bin/python -m bench.hardware --seconds 6   # quick run

Baseline, measured in the same run: a bare psutil.virtual_memory() call, the cheapest read
the monitor makes. The sampler's cost is the process CPU time spent while the main thread
sleeps, as a percentage of one core (an idle window of the same length is measured first and
subtracted). Back-to-back ticks reuse per-core CPU loads younger than 0.5 s, so
sample_tick_ms is the cheap path; the sampler window includes the full tick. Uses the real NVML
where there is one. Prints `name: value` lines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

from backend.hardware.monitor import HardwareMonitor
from bench.timing import median_ms


def cpu_pct_of_one_core(seconds: float) -> float:
    """Process CPU time over a window in which this thread only sleeps, as % of one core."""
    cpu_start, wall_start = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return 100 * (time.process_time() - cpu_start) / (time.monotonic() - wall_start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="sampler window (s)")
    parser.add_argument("--interval", type=float, default=2.0, help="sampler interval (s)")
    parser.add_argument("--repeat", type=int, default=200, help="calls per timing")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        monitor = HardwareMonitor(Path(tmp), Path(tmp) / "models", interval_s=args.interval)
        first = monitor.snapshot()  # NVML init and the static facts, once
        baseline_ms = median_ms(psutil.virtual_memory, args.repeat)
        snapshot_ms = median_ms(monitor.snapshot, args.repeat)
        sample_ms = median_ms(monitor.sample_now, args.repeat)
        idle_pct = cpu_pct_of_one_core(args.seconds)
        monitor.start()
        sampling_pct = cpu_pct_of_one_core(args.seconds)
        monitor.close()

    print(f"gpus: {len(first.gpus)} ({first.nvml_reason or 'NVML ok'})")
    print(f"baseline_virtual_memory_ms: {baseline_ms:.4f}")
    print(f"snapshot_ms: {snapshot_ms:.4f}")
    print(f"snapshot_vs_baseline_ratio: {snapshot_ms / baseline_ms:.1f}")
    print(f"sample_tick_ms: {sample_ms:.4f}")
    print(f"sample_tick_vs_baseline_ratio: {sample_ms / baseline_ms:.1f}")
    print(f"idle_cpu_pct_of_one_core: {idle_pct:.4f}")
    print(f"sampler_cpu_pct_of_one_core_at_{args.interval:g}s: {sampling_pct:.4f}")
    print(f"sampler_cpu_pct_above_idle: {max(sampling_pct - idle_pct, 0.0):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
