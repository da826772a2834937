"""Admission settings: the policy, the safety margin kept free on each device, and how the engine
runs models (Ollama's OLLAMA_NUM_PARALLEL, OLLAMA_CONTEXT_LENGTH, OLLAMA_FLASH_ATTENTION,
OLLAMA_KV_CACHE_TYPE), which every estimate, fit badge and admission decision uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.estimate.memory import KV_CACHE_TYPES
from backend.units import MIB

Policy = Literal["strict", "balanced", "relaxed", "off"]
POLICIES: tuple[Policy, ...] = ("strict", "balanced", "relaxed", "off")
# Where an admin's load goes on a pool of engines: the host admission admits with the most
# headroom (spread), or the one with the least headroom that still admits it (pack).
PlacementPolicy = Literal["spread", "pack"]
PLACEMENTS: tuple[PlacementPolicy, ...] = ("spread", "pack")
MarginUnit = Literal["MiB", "%"]
MAX_PARALLEL = 64
MAX_CONTEXT_LENGTH = 1024 * 1024
# The engine settings an admin mirrors here, with the Ollama variable each stands for.
ENGINE_ENV_VARS: dict[str, str] = {
    "num_parallel": "OLLAMA_NUM_PARALLEL",
    "context_length": "OLLAMA_CONTEXT_LENGTH",
    "flash_attention": "OLLAMA_FLASH_ATTENTION",
    "kv_cache_type": "OLLAMA_KV_CACHE_TYPE",
}


class AdmissionError(ValueError):
    """An admission setting or request has a value that cannot be used."""


@dataclass(frozen=True)
class AdmissionSettings:
    policy: Policy = "balanced"
    margin: float = 512.0  # kept free on each device: MiB, or % of the device's total
    margin_unit: MarginUnit = "MiB"
    kv_cache_type: str = "f16"  # what the engine runs with (Ollama: OLLAMA_KV_CACHE_TYPE)
    num_parallel: int = 1  # slots per loaded model (OLLAMA_NUM_PARALLEL)
    context_length: int = 4096  # num_ctx when a request names none (OLLAMA_CONTEXT_LENGTH)
    flash_attention: bool = False  # OLLAMA_FLASH_ATTENTION; a quantized KV cache needs it
    placement: PlacementPolicy = "spread"  # which host of a pool an admin's load goes to

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("Policy", self.policy, POLICIES),
            ("Placement", self.placement, PLACEMENTS),
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
        for name, number, top in (
            ("Parallel slots (OLLAMA_NUM_PARALLEL)", self.num_parallel, MAX_PARALLEL),
            ("Context length (OLLAMA_CONTEXT_LENGTH)", self.context_length, MAX_CONTEXT_LENGTH),
        ):
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= top:
                raise AdmissionError(
                    f"{name} must be a whole number from 1 to {top}, got {number!r}"
                )
        if not isinstance(self.flash_attention, bool):
            raise AdmissionError(
                f"Flash attention (OLLAMA_FLASH_ATTENTION) must be on or off, got "
                f"{self.flash_attention!r}"
            )
        if self.kv_cache_type != "f16" and not self.flash_attention:
            raise AdmissionError(
                f"A {self.kv_cache_type} KV cache needs flash attention: Ollama ignores "
                "OLLAMA_KV_CACHE_TYPE unless OLLAMA_FLASH_ATTENTION=1."
            )

    def margin_bytes(self, device_total_bytes: int) -> int:
        if self.policy == "off" or device_total_bytes <= 0:
            return 0
        if self.margin_unit == "%":
            return int(device_total_bytes * self.margin / 100)
        return int(self.margin * MIB)

    def describe_margin(self) -> str:
        return f"{self.margin:g} {self.margin_unit}"

    def describe_engine(self) -> str:
        """The engine settings as the Ollama variables an admin sets."""
        return (
            f"OLLAMA_NUM_PARALLEL={self.num_parallel}, OLLAMA_CONTEXT_LENGTH={self.context_length},"
            f" OLLAMA_FLASH_ATTENTION={int(self.flash_attention)}, "
            f"OLLAMA_KV_CACHE_TYPE={self.kv_cache_type}"
        )


@dataclass(frozen=True)
class LearnedMargin:
    """What admission adds to its safety margin after measured loads ran above their estimates
    (backend.models_admin.load_records.learned_margin works it out from the load records)."""

    bytes: int = 0  # 0 when no measured load ran above its estimate
    raw_bytes: int = 0  # the worst measured excess before the cap
    model: str = ""  # the load that ran furthest above its estimate

    def describe(self) -> str:
        if not self.bytes:
            return ""
        capped = " (capped)" if self.raw_bytes > self.bytes else ""
        return (
            f"{self.bytes / MIB:.0f} MiB{capped} learned from loads that ran above their "
            f"estimate (worst: {self.model}, {self.raw_bytes / MIB:.0f} MiB over)"
        )


NO_LEARNED_MARGIN = LearnedMargin()
