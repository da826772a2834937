"""`python app.py estimate MODEL ...`: the memory breakdown, placement verdict and speed bound."""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Callable
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
# Bounds that no real setting reaches; past them the arithmetic overflows or means nothing.
MAX_CTX_TOKENS = 1 << 24  # 16,777,216: beyond any model's trained context (Llama 4 Scout: 10M)
MAX_SLOTS = 1024
MAX_BATCH = 1 << 20
MAX_GIB = float(1 << 20)  # 1 PiB of memory
MAX_GBPS = 1e6
MAX_MODEL_CHARS = 4096  # PATH_MAX on Linux; a catalog tag is far shorter


def _whole(low: int, high: int, unit: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"a whole number of {unit} from {low} to {high:,} is needed, got {_shown(text)}"
            )
        return value

    return parse


def _amount(unit: str, high: float, *, zero: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low_ok = value >= 0 if zero else value > 0
        if not (math.isfinite(value) and low_ok and value <= high):
            least = "0" if zero else "more than 0"
            raise argparse.ArgumentTypeError(
                f"a number of {unit} from {least} to {high:,.0f} is needed, got {_shown(text)}"
            )
        return value

    return parse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="catalog tag (llama3.1:8b) or a .gguf path")
    parser.add_argument("--quant", help="quantization, e.g. Q4_K_M (default: the tag's own)")
    parser.add_argument(
        "--ctx",
        type=_whole(1, MAX_CTX_TOKENS, "tokens"),
        default=4096,
        help="context tokens per slot",
    )
    parser.add_argument(
        "--kv-cache", choices=sorted(KV_CACHE_TYPES), default="f16", help="KV cache type"
    )
    gib = _amount("GiB", MAX_GIB, zero=True)
    parser.add_argument("--vram-gb", type=gib, default=0.0, help="free GPU memory in GiB")
    parser.add_argument("--ram-gb", type=gib, help="free RAM in GiB (default: available now)")
    slots = _whole(1, MAX_SLOTS, "slots")
    parser.add_argument("--parallel", type=slots, default=1, help="parallel request slots")
    parser.add_argument("--flash-attention", action="store_true", help="flash attention on")
    batch = _whole(1, MAX_BATCH, "tokens")
    parser.add_argument("--batch", type=batch, default=512, help="n_batch / n_ubatch")
    gbps = _amount("GB/s", MAX_GBPS, zero=False)
    parser.add_argument(
        "--gpu-bandwidth-gbps", type=gbps, default=DEFAULT_GPU_BANDWIDTH_GBPS, help="GB/s"
    )
    parser.add_argument(
        "--ram-bandwidth-gbps", type=gbps, default=DEFAULT_RAM_BANDWIDTH_GBPS, help="GB/s"
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
        free_ram = int(args.ram_gb * GIB) if args.ram_gb is not None else _available_ram()
        free_vram = int(args.vram_gb * GIB)
        placement = place(spec, estimate, free_vram, free_ram)
    except (CatalogError, EstimateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if flash and not args.flash_attention:
        print(f"note: a {args.kv_cache} KV cache needs flash attention; turned it on.", file=out)
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
    if _is_gguf_path(model):
        from backend.estimate.gguf_spec import spec_from_gguf

        spec = spec_from_gguf(Path(model))
        if quant and quant.upper() != spec.quantization.upper():
            raise EstimateError(
                f"{_shown(model)} is a {spec.quantization} file; --quant cannot change it"
            )
        name = _printable(Path(model).name)
        return spec, f"{name} ({spec.architecture}, {spec.quantization}, GGUF header)"
    if quant is not None:
        _check_text("--quant", quant)
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


def _is_gguf_path(model: str) -> bool:
    """Whether MODEL names a file to read (a .gguf name, or any existing file) or a tag."""
    _check_text("MODEL", model)
    if len(model) > MAX_MODEL_CHARS:
        raise EstimateError(
            f"MODEL is {len(model):,} characters long; a catalog tag or a path is at most "
            f"{MAX_MODEL_CHARS:,}."
        )
    path = Path(model)
    try:
        if path.is_dir():
            raise EstimateError(f"{_shown(model)} is a folder; give a .gguf file or a catalog tag.")
        return model.lower().endswith(".gguf") or path.is_file()
    except OSError as exc:  # a name too long for the file system, a folder we may not read
        raise EstimateError(f"Cannot read {_shown(model)}: {exc.strerror or exc}.") from exc


def _check_text(what: str, text: str) -> None:
    if "\x00" in text:
        raise EstimateError(f"{what} contains a NUL character: {_shown(text)}.")


def _shown(text: str) -> str:
    """text quoted for a message: printable, and cut short when it is absurdly long."""
    if len(text) > 80:
        return f"{text[:60]!r}… ({len(text):,} characters)"
    return repr(text)


def _printable(text: str) -> str:
    """A file name that may hold undecodable bytes (lone surrogates), safe to print as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _unknown(model: str, catalog: Catalog) -> str:
    tags = [*catalog.tags(), *(q.tag for e in catalog.entries for q in e.quants)]
    close = difflib.get_close_matches(model, tags, n=5, cutoff=0.5) if len(model) <= 200 else []
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"Unknown model {_shown(model)}: not in the catalog and not a .gguf file.{hint}"


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
