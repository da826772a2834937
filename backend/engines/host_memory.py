"""One engine host's GPU memory as Hearth can know it, from where its spec says (`gpu_facts`).

- `local`: this machine's NVML. It is read above this layer (backend.hardware); here the host is
  only marked as local.
- `dcgm:<url>`: the NVIDIA dcgm-exporter's DCGM_FI_DEV_FB_FREE / DCGM_FI_DEV_FB_USED per GPU,
  summed over the host's GPUs (Ollama splits a model's layers across them).
- `declared:<GiB>`: the VRAM the admin declared minus what the engine reports loaded (/api/ps).
- An OpenAI-compatible server that is vLLM: its GPU is taken whatever gpu_facts says (vLLM
  pre-allocates --gpu-memory-utilization of it when it starts).
- Nothing configured (or a DCGM exporter that does not answer): unknown, with the setting to add.

Another host's RAM is never known: a remote host's facts are GPU facts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from backend.engines.base import EngineError, LoadedModel
from backend.engines.config import EngineSpec
from backend.engines.server_facts import GpuMemory, read_dcgm_gpus
from backend.units import GIB, format_bytes, format_size

HostMemoryKind = Literal["local", "known", "taken", "unknown"]
FACTS_SETTING = (
    '"gpu_facts": "local" (it runs on this machine), "dcgm:<exporter url>" or "declared:<GiB>"'
)


@dataclass(frozen=True)
class HostMemory:
    """What Hearth knows of one engine host's GPU memory now."""

    host: str  # the engine's name
    kind: HostMemoryKind  # local: read NVML; known: the numbers below; taken / unknown: none
    free_vram_bytes: int = 0
    total_vram_bytes: int = 0
    source: str = ""  # where the numbers come from, or why there are none (a sentence)
    gpus: tuple[GpuMemory, ...] = ()  # per GPU, when a DCGM exporter told

    @property
    def known(self) -> bool:
        return self.kind in ("local", "known")

    def describe(self) -> str:
        """One line for an engine card."""
        if self.kind == "known" and self.gpus:
            return "; ".join(
                f"GPU {g.index} {g.name}: {format_bytes(g.free_bytes)} free of "
                f"{format_bytes(g.total_bytes)} (DCGM)".replace("  ", " ")
                for g in self.gpus
            )
        if self.kind == "known":
            return (
                f"{format_bytes(self.free_vram_bytes)} free of "
                f"{format_bytes(self.total_vram_bytes)} ({self.source})"
            )
        return self.source


def vllm_taken(spec: EngineSpec) -> HostMemory:
    return HostMemory(
        spec.name,
        "taken",
        source=(
            f"GPU taken by vLLM: engine '{spec.name}' pre-allocates --gpu-memory-utilization of "
            "its GPU when it starts, so Hearth places no load there (it serves the models it "
            "was started with)."
        ),
    )


def read_host_memory(
    spec: EngineSpec, loaded: Sequence[LoadedModel], server_kind: str = ""
) -> HostMemory:
    """The host's GPU memory by its spec; `loaded` is what the engine reports loaded (for
    declared VRAM); `server_kind` is "vllm" for a vLLM server. Never raises: a fact that cannot
    be read is an unknown host with the reason."""
    facts = spec.gpu_facts
    if server_kind == "vllm":
        return vllm_taken(spec)
    if facts.source == "local":
        return HostMemory(spec.name, "local", source="this machine's NVML")
    if facts.source == "dcgm":
        try:
            gpus = read_dcgm_gpus(facts.dcgm_url)
        except EngineError as exc:
            return HostMemory(
                spec.name,
                "unknown",
                source=f"{exc} Engine '{spec.name}' has no GPU facts until it answers "
                '(or declare its VRAM with "gpu_facts": "declared:<GiB>").',
            )
        return HostMemory(
            spec.name,
            "known",
            sum(g.free_bytes for g in gpus),
            sum(g.total_bytes for g in gpus),
            f"DCGM exporter at {facts.dcgm_url}",
            tuple(gpus),
        )
    if facts.source == "declared" and facts.declared_vram_gib is not None:
        total = int(facts.declared_vram_gib * GIB)
        used = sum(m.vram_bytes for m in loaded)
        source = (
            f"{facts.declared_vram_gib:g} GiB declared, minus {format_size(used)} loaded (/api/ps)"
        )
        return HostMemory(spec.name, "known", max(total - used, 0), total, source)
    return HostMemory(
        spec.name,
        "unknown",
        source=(
            f"Engine '{spec.name}' has no GPU facts, so Hearth cannot place a load there by "
            f"numbers: add {FACTS_SETTING} to its entry in HEARTH_ENGINES."
        ),
    )
