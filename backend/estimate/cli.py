"""`python app.py estimate MODEL ...`: the memory breakdown, placement verdict and speed bound."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import TextIO

from backend.estimate.catalog import Catalog, CatalogError, load_catalog, spec_for
from backend.estimate.memory import (
    CUDA_MINIMUM_BYTES,
    DEFAULT_RAM_BANDWIDTH_GBPS,
    KV_CACHE_TYPES,
    EstimateError,
    MemoryEstimate,
    Placement,
    decode_speed_bound,
    estimate_memory,
    place,
)
from backend.estimate.spec import ModelSpec
from backend.units import GIB, format_size

DEFAULT_GPU_BANDWIDTH_GBPS = 900.0  # an RTX 3090/4090-class card


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="catalog tag (llama3.1:8b) or a .gguf path")
    parser.add_argument("--quant", help="quantization, e.g. Q4_K_M (default: the tag's own)")
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    parser.add_argument(
        "--kv-cache", choices=sorted(KV_CACHE_TYPES), default="f16", help="KV cache type"
    )
    parser.add_argument("--vram-gb", type=float, default=0.0, help="free GPU memory in GiB")
    parser.add_argument("--ram-gb", type=float, help="free RAM in GiB (default: available now)")
    parser.add_argument("--parallel", type=int, default=1, help="parallel request slots")
    parser.add_argument("--flash-attention", action="store_true", help="flash attention on")
    parser.add_argument("--batch", type=int, default=512, help="n_batch / n_ubatch")
    parser.add_argument(
        "--gpu-bandwidth-gbps", type=float, default=DEFAULT_GPU_BANDWIDTH_GBPS, help="GB/s"
    )
    parser.add_argument(
        "--ram-bandwidth-gbps", type=float, default=DEFAULT_RAM_BANDWIDTH_GBPS, help="GB/s"
    )


def run(args: argparse.Namespace, catalog_path: Path, out: TextIO | None = None) -> int:
    """Print the estimate for args.model; 2 for an unknown model or a setting that cannot be."""
    out = out or sys.stdout
    try:
        spec, label = _resolve(args.model, args.quant, catalog_path)
        flash = args.flash_attention or args.kv_cache != "f16"
        estimate = estimate_memory(
            spec,
            num_ctx=args.ctx,
            kv_cache_type=args.kv_cache,
            parallel=args.parallel,
            flash_attention=flash,
            n_batch=args.batch,
            n_ubatch=args.batch,
        )
    except (CatalogError, EstimateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if flash and not args.flash_attention:
        print(f"note: a {args.kv_cache} KV cache needs flash attention; turned it on.", file=out)
    free_ram = int(args.ram_gb * GIB) if args.ram_gb is not None else _available_ram()
    free_vram = int(args.vram_gb * GIB)
    placement = place(spec, estimate, free_vram, free_ram)
    print(f"Model    {label}", file=out)
    print(
        f"Context  {args.ctx} tokens x {args.parallel} slot(s), KV cache {args.kv_cache}, "
        f"flash attention {'on' if flash else 'off'}, batch {args.batch}",
        file=out,
    )
    facts = (
        "the file's tensors (exact)"
        if estimate.weights_source == "exact"
        else "llama.cpp's quantization recipe over the architecture's shapes (recipe)"
    )
    print(f"Weights  from {facts}", file=out)
    print("", file=out)
    _print_placement(args, spec, estimate, placement, (free_vram, free_ram), out)
    return 0


def _print_placement(
    args: argparse.Namespace,
    spec: ModelSpec,
    estimate: MemoryEstimate,
    placement: Placement,
    free: tuple[int, int],
    out: TextIO,
) -> None:
    """Where the buffers go for the free (VRAM, RAM), and the decode speed that allows."""
    free_vram, free_ram = free
    print(
        f"With {format_size(free_vram, precise=True)} free VRAM and "
        f"{format_size(free_ram, precise=True)} free RAM: {placement.verdict}",
        file=out,
    )
    print(_table(estimate, placement), file=out)
    print(
        f"  {placement.gpu_layers}/{placement.total_layers} layers on the GPU; "
        f"VRAM {format_size(placement.vram_bytes, precise=True)}"
        + (
            f" (incl. {format_size(CUDA_MINIMUM_BYTES, precise=True)} CUDA minimum)"
            if placement.gpu_layers
            else ""
        )
        + f", RAM {format_size(placement.ram_bytes, precise=True)}",
        file=out,
    )
    if placement.verdict != "will not fit":
        speed = decode_speed_bound(
            spec,
            estimate,
            placement,
            gpu_bandwidth_gbps=args.gpu_bandwidth_gbps,
            ram_bandwidth_gbps=args.ram_bandwidth_gbps,
        )
        print(
            f"Decode speed bound: {speed:.1f} tok/s (memory bandwidth: GPU "
            f"{args.gpu_bandwidth_gbps:g} GB/s, RAM {args.ram_bandwidth_gbps:g} GB/s)",
            file=out,
        )


def _resolve(model: str, quant: str | None, catalog_path: Path) -> tuple[ModelSpec, str]:
    if model.lower().endswith(".gguf") or Path(model).is_file():
        from backend.estimate.gguf_spec import spec_from_gguf

        spec = spec_from_gguf(Path(model))
        if quant and quant.upper() != spec.quantization.upper():
            raise EstimateError(f"{model} is a {spec.quantization} file; --quant cannot change it")
        return spec, f"{Path(model).name} ({spec.architecture}, {spec.quantization}, GGUF header)"
    catalog = load_catalog(catalog_path)
    entry = catalog.find(model)
    if entry is None:
        raise CatalogError(_unknown(model, catalog))
    option = catalog.quant_for_tag(model)
    chosen = entry.quant(quant or (option.quant if option else None))
    spec = spec_for(entry, chosen.quant)
    return spec, (
        f"{chosen.tag} ({entry.display_name}, {chosen.quant}, file size {chosen.size_source})"
    )


def _unknown(model: str, catalog: Catalog) -> str:
    tags = [*catalog.tags(), *(q.tag for e in catalog.entries for q in e.quants)]
    close = difflib.get_close_matches(model, tags, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"Unknown model {model!r}: not in the catalog and not a .gguf file.{hint}"


def _table(estimate: MemoryEstimate, placement: Placement) -> str:
    """Each llama.cpp buffer where it lives: total, GPU part, host part."""
    gpu, host = placement.gpu, placement.host
    rows = [
        ("Weights", gpu.weights_bytes, host.weights_bytes),
        ("KV cache", gpu.kv_cache_bytes, host.kv_cache_bytes),
        ("Compute graph", gpu.compute_bytes, host.compute_bytes),
        ("Output buffer", gpu.output_bytes, host.output_bytes),
        ("Runtime overhead", gpu.overhead_bytes, host.overhead_bytes),
        ("Total", placement.vram_bytes, placement.ram_bytes),
    ]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'Component':<{width}}  {'Total':>10}  {'GPU':>10}  {'Host':>10}"]
    lines += [
        f"{name:<{width}}"
        + "".join(f"  {format_size(value, precise=True):>10}" for value in (g + h, g, h))
        for name, g, h in rows
    ]
    if estimate.tied_output_bytes and placement.gpu_layers > estimate.block_count:
        lines.append(
            f"(the GPU weights include a {format_size(estimate.tied_output_bytes, precise=True)} "
            "copy of the token embedding: the output layer is tied to it)"
        )
    return "\n".join(lines)


def _available_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)
