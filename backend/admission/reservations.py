"""Reservations: memory promised to model loads still in flight, decided and held under one lock."""

from __future__ import annotations

import threading
from collections.abc import Callable

from backend.admission.types import Decision, Reservation


class Reservations:
    """Memory promised to loads in flight; admit() decides and reserves under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, Reservation] = {}
        self._next_id = 1

    def held(self) -> tuple[Reservation, ...]:
        with self._lock:
            return tuple(self._held.values())

    def admit(
        self,
        model: str,
        decide: Callable[[tuple[Reservation, ...]], Decision],
        *,
        force: bool = False,
    ) -> tuple[Decision, Reservation | None]:
        """Run decide() against the current reservations; reserve its placement if admitted.

        Two admins loading at once are serialised here, so the second decision already sees
        the first one's reservation.
        """
        with self._lock:
            decision = decide(tuple(self._held.values()))
            if not (decision.admitted or force) or decision.already_loaded:
                return decision, None
            reservation = Reservation(
                self._next_id, model, decision.placement.vram_bytes, decision.placement.ram_bytes
            )
            self._held[reservation.id] = reservation
            self._next_id += 1
            return decision, reservation

    def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            with self._lock:
                self._held.pop(reservation.id, None)
