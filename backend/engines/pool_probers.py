"""The pool's prober threads: one per engine, each stopped on its own when its engine leaves."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from backend.engines.config import EngineSpec
from backend.engines.pool_member import PoolMember


class Probers:
    """A thread per followed member that probes it every `interval_s`; thread-safe."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._threads: dict[PoolMember, tuple[threading.Event, threading.Thread]] = {}

    def follow(self, members: Sequence[PoolMember]) -> None:
        with self._lock:
            for member in members:
                if member in self._threads:
                    continue
                stop = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(member, stop), name=f"probe-{member.name}",
                    daemon=True,
                )  # fmt: skip
                self._threads[member] = (stop, thread)
                thread.start()

    def stop(self, members: Sequence[PoolMember], join_s: float = 0.0) -> None:
        """Stop following these members (each thread ends after the probe it is in)."""
        with self._lock:
            stopped = [self._threads.pop(m) for m in members if m in self._threads]
        for stop, _ in stopped:
            stop.set()
        for _, thread in stopped:
            if join_s:
                thread.join(timeout=join_s)

    def stop_all(self, join_s: float = 0.0) -> None:
        with self._lock:
            members = list(self._threads)
        self.stop(members, join_s)

    def names(self) -> list[str]:
        """The members followed by a prober thread that is alive now."""
        with self._lock:
            return [m.name for m, (_, thread) in self._threads.items() if thread.is_alive()]

    def _run(self, member: PoolMember, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            member.probe()


def identity(spec: EngineSpec) -> tuple[str, str, str | None]:
    """What makes two specs the same server to talk to: a member is kept across a change."""
    return spec.kind, spec.url, spec.api_key


def probe_all(members: Sequence[PoolMember]) -> None:
    """Probe these engines at once and wait for the answers."""
    threads = [threading.Thread(target=m.probe, daemon=True) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
