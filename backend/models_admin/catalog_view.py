"""The Models tab's catalog: every catalog model and quant judged against one host's free memory,
the models that host has installed marked."""

from __future__ import annotations

from collections.abc import Collection

from backend.admission import AdmissionSettings, Machine
from backend.engines.base import model_key
from backend.estimate.catalog import Catalog, fit_rows
from backend.models_admin.hosts import gpu_only
from backend.models_admin.values import CatalogRow

UNKNOWN_RAM_BYTES = 1 << 62  # another host's RAM: any host part fits; gpu_only() judges the rest


def catalog_rows(
    catalog: Catalog,
    machine: Machine,
    settings: AdmissionSettings,
    num_ctx: int,
    kv_cache_type: str,
    installed: Collection[str],
) -> tuple[CatalogRow, ...]:
    """Rows in catalog order; `installed` holds model keys (backend.engines.base.model_key)."""
    fa = settings.flash_attention or kv_cache_type != "f16"
    rows = fit_rows(
        catalog,
        free_vram_bytes=machine.free_vram_bytes,
        total_vram_bytes=machine.total_vram_bytes,
        free_ram_bytes=machine.free_ram_bytes if machine.ram_known else UNKNOWN_RAM_BYTES,
        gpu_bandwidth_gbps=machine.gpu_bandwidth_gbps,
        ram_bandwidth_gbps=machine.ram_bandwidth_gbps,
        num_ctx=int(num_ctx),
        kv_cache_type=kv_cache_type,
        flash_attention=fa,
        parallel=settings.num_parallel,
    )
    if not machine.ram_known:
        rows = gpu_only(rows)
    by_tag = {q.tag: (e, q) for e in catalog.entries for q in e.quants}
    result = []
    for row in rows:
        entry, option = by_tag[row.tag]
        default = option.quant == entry.default_quant
        here = model_key(row.tag) in installed or (default and model_key(entry.tag) in installed)
        result.append(CatalogRow(row, entry.parameter_count, entry.context_length, default, here))
    return tuple(result)
