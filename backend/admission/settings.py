"""Admission settings: the policy, the safety margin kept free on each device, the KV cache type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.estimate.memory import KV_CACHE_TYPES
from backend.units import MIB

Policy = Literal["strict", "balanced", "relaxed", "off"]
POLICIES: tuple[Policy, ...] = ("strict", "balanced", "relaxed", "off")
MarginUnit = Literal["MiB", "%"]


class AdmissionError(ValueError):
    """An admission setting or request has a value that cannot be used."""


@dataclass(frozen=True)
class AdmissionSettings:
    policy: Policy = "balanced"
    margin: float = 512.0  # kept free on each device: MiB, or % of the device's total
    margin_unit: MarginUnit = "MiB"
    kv_cache_type: str = "f16"  # what the engine runs with (Ollama: OLLAMA_KV_CACHE_TYPE)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("Policy", self.policy, POLICIES),
            ("Margin unit", self.margin_unit, ("MiB", "%")),
            ("KV cache type", self.kv_cache_type, tuple(KV_CACHE_TYPES)),
        ):
            if value not in allowed:
                raise AdmissionError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        limit = 50 if self.margin_unit == "%" else 1024 * 1024
        if not 0 <= self.margin <= limit:
            raise AdmissionError(
                f"Margin must be between 0 and {limit} {self.margin_unit}, got {self.margin}"
            )

    def margin_bytes(self, device_total_bytes: int) -> int:
        if self.policy == "off" or device_total_bytes <= 0:
            return 0
        if self.margin_unit == "%":
            return int(device_total_bytes * self.margin / 100)
        return int(self.margin * MIB)

    def describe_margin(self) -> str:
        return f"{self.margin:g} {self.margin_unit}"
