"""The model service's values: the Models tab's catalog view, a load's result, a refusal."""

from __future__ import annotations

from dataclasses import dataclass

from backend.admission import Decision, Machine
from backend.estimate.catalog import FitRow
from backend.models_admin.load_records import LoadRecord
from backend.units import format_size


class AdmissionRefused(ValueError):
    """The admission check refused a load; the message carries its numbers."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message())
        self.decision = decision


@dataclass(frozen=True)
class CatalogRow:
    fit: FitRow
    parameter_count: int
    context_length: int
    is_default_quant: bool
    installed: bool


@dataclass(frozen=True)
class CatalogView:
    rows: tuple[CatalogRow, ...]
    num_ctx: int
    kv_cache_type: str
    machine: Machine
    engine_error: str = ""  # why the installed marks are missing, "" when the engine answered
    parallel: int = 1  # slots per model (OLLAMA_NUM_PARALLEL)
    flash_attention: bool = False
    host: str = ""  # the pool engine whose host the rows are judged on ("" on a single engine)
    hosts: tuple[str, ...] = ()  # the pool's engines, to pick from (() on a single engine)


@dataclass(frozen=True)
class LoadResult:
    decision: Decision
    record: LoadRecord
    overridden: bool


def decision_numbers(decision: Decision) -> str:
    """The audit detail of a decision: what it needs, what was free, the verdict."""
    p = decision.placement
    where = f"host {decision.host}; " if decision.host else ""
    return (
        f"{where}num_ctx {decision.num_ctx}, KV {decision.kv_cache_type}; estimate "
        f"{format_size(decision.estimate.total_bytes)} ({format_size(p.vram_bytes)} VRAM + "
        f"{format_size(p.ram_bytes)} RAM, {p.verdict}); available "
        f"{format_size(decision.free_vram_bytes)} VRAM + {format_size(decision.free_ram_bytes)} "
        f"RAM; policy {decision.policy}: {decision.verdict}"
    )
