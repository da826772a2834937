"""Reservations: memory promised to model loads still in flight, decided and held under one lock.

Each reservation is on one host: an engine of a pool by its name, or "" on a single engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from backend.admission.types import Decision, Reservation

HeldOn = Callable[[str], tuple[Reservation, ...]]


class Reservations:
    """Memory promised to loads in flight; admit() decides and reserves under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, Reservation] = {}
        self._next_id = 1

    def held(self, host: str | None = None) -> tuple[Reservation, ...]:
        """Every reservation (host None), or those on one host."""
        with self._lock:
            return self._held_on(host) if host is not None else tuple(self._held.values())

    def _held_on(self, host: str) -> tuple[Reservation, ...]:
        return tuple(r for r in self._held.values() if r.host == host)

    def admit(
        self,
        model: str,
        decide: Callable[[tuple[Reservation, ...]], Decision],
        *,
        force: bool = False,
        host: str = "",
    ) -> tuple[Decision, Reservation | None]:
        """Run decide() against the host's reservations; reserve its placement if admitted.

        Two admins loading at once are serialised here, so the second decision already sees
        the first one's reservation.
        """
        _, decision, reservation = self.admit_on(
            model, lambda held_on: (host, decide(held_on(host))), force=force
        )
        return decision, reservation

    def admit_on(
        self,
        model: str,
        choose: Callable[[HeldOn], tuple[str, Decision]],
        *,
        force: bool = False,
    ) -> tuple[str, Decision, Reservation | None]:
        """Let `choose` pick a host and decide there, with every host's reservations to read
        (held_on(host)); reserve the decision's placement on that host if admitted (or forced).
        """
        with self._lock:
            host, decision = choose(self._held_on)
            if not (decision.admitted or force) or decision.already_loaded:
                return host, decision, None
            reservation = Reservation(
                self._next_id,
                model,
                decision.placement.vram_bytes,
                decision.placement.ram_bytes,
                host,
            )
            self._held[reservation.id] = reservation
            self._next_id += 1
            return host, decision, reservation

    def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            with self._lock:
                self._held.pop(reservation.id, None)
