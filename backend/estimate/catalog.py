"""The curated model catalog (data/catalog.json) and the "what fits this machine" rows."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backend.estimate.memory import (
    DeviceParts,
    Verdict,
    decode_speed_bound,
    estimate_memory,
    place,
)
from backend.estimate.quant_recipe import FILE_TYPE_BASE, FILE_TYPE_ORDER
from backend.estimate.spec import ModelSpec
from backend.estimate.tensors import recipe_tensors, tensor_bytes

# exact: a published tensor list or byte count (size_url says where); recipe: the tensors of
# the architecture's shapes at the types llama.cpp's quantization recipe gives them.
SizeSource = Literal["exact", "recipe"]
_ARCH_INT_FIELDS = ("block_count", "embedding_length", "head_count", "head_count_kv")
_ARCH_OPTIONAL_INT_FIELDS = (
    "key_length",
    "value_length",
    "vocab_size",
    "feed_forward_length",
    "expert_count",
    "expert_used_count",
    "expert_feed_forward_length",
    "sliding_window",
    "sliding_window_layers",
    "vision_parameter_count",
)


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class QuantOption:
    quant: str  # llama.cpp file type name: "Q4_K_M", "Q8_0", "F16", ...
    tag: str  # the Ollama tag that pulls exactly this file
    size_bytes: int  # the file's tensor bytes
    size_source: SizeSource
    size_url: str = ""  # where the published figure is, for size_source "exact"

    @property
    def order(self) -> int:
        """Rank of the file type by size (Q2_K first, F32 last)."""
        return FILE_TYPE_ORDER.index(self.quant)


@dataclass(frozen=True)
class CatalogEntry:
    tag: str  # the Ollama tag of the default quantization, e.g. "llama3.1:8b"
    family: str
    display_name: str
    parameter_count: int
    architecture: str
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    context_length: int
    quants: tuple[QuantOption, ...]
    default_quant: str
    sources: tuple[tuple[str, str], ...]  # (what, URL)
    key_length: int | None = None
    value_length: int | None = None
    vocab_size: int | None = None
    feed_forward_length: int = 0
    expert_count: int = 0
    expert_used_count: int = 0
    expert_feed_forward_length: int = 0
    sliding_window: int = 0
    sliding_window_layers: int = 0
    tied_embeddings: bool = False
    note: str = ""
    tensor_types: tuple[tuple[str, str], ...] = ()  # (name suffix, type) its files really have
    tensor_types_quants: tuple[str, ...] = ()  # the file types they hold for (empty: all)
    vision_parameter_count: int = 0  # a vision tower in the same file, kept at F16

    def quant(self, name: str | None = None) -> QuantOption:
        """The option for `name` (default quantization when None); readable error otherwise."""
        wanted = (name or self.default_quant).upper()
        for option in self.quants:
            if option.quant == wanted:
                return option
        offered = ", ".join(q.quant for q in self.quants)
        raise CatalogError(f"{self.tag} is not offered as {wanted}; offered: {offered}")


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]

    def find(self, tag: str) -> CatalogEntry | None:
        """The entry for a tag: its own ("llama3.1:8b") or one of its quant tags."""
        wanted = tag.strip().lower()
        for entry in self.entries:
            if entry.tag.lower() == wanted or any(q.tag.lower() == wanted for q in entry.quants):
                return entry
        return None

    def quant_for_tag(self, tag: str) -> QuantOption | None:
        """The quantization a full tag names ("llama3.1:8b-instruct-q8_0"), None for base tags."""
        for entry in self.entries:
            for option in entry.quants:
                if option.tag.lower() == tag.strip().lower():
                    return option
        return None

    def families(self) -> tuple[str, ...]:
        """Family names in catalog order, each once."""
        return tuple(dict.fromkeys(entry.family for entry in self.entries))

    def tags(self) -> tuple[str, ...]:
        return tuple(entry.tag for entry in self.entries)

    def subset(self, tags: Collection[str]) -> Catalog:
        """The entries whose base tag is in tags, in catalog order."""
        wanted = {tag.lower() for tag in tags}
        return Catalog(tuple(e for e in self.entries if e.tag.lower() in wanted))


def load_catalog(path: Path) -> Catalog:
    """Read and validate data/catalog.json."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"Catalog file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"Catalog {path} is not valid JSON: {exc}") from exc
    raw_entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(raw_entries, list) or not raw_entries:
        raise CatalogError(f"Catalog {path} has no 'entries' list")
    entries = tuple(_entry(raw, index) for index, raw in enumerate(raw_entries))
    seen: set[str] = set()
    for entry in entries:
        for tag in (entry.tag, *(q.tag for q in entry.quants)):
            if tag in seen:
                raise CatalogError(f"Catalog entry {entry.tag}: tag {tag!r} appears twice")
            seen.add(tag)
    return Catalog(entries)


def _entry(raw: Any, index: int) -> CatalogEntry:
    if not isinstance(raw, dict):
        raise CatalogError(f"Catalog entry #{index} is not an object")
    named = raw.get("tag")
    tag = named if isinstance(named, str) else f"#{index}"
    arch = _field(raw, "architecture", dict, tag)
    quants = tuple(_quant(q, tag) for q in _field(raw, "quants", list, tag))
    if not quants:
        raise CatalogError(f"Catalog entry {tag}: field 'quants' is empty")
    default_quant = _field(raw, "default_quant", str, tag)
    if default_quant not in {q.quant for q in quants}:
        raise CatalogError(f"Catalog entry {tag}: default_quant {default_quant!r} is not offered")
    sources = _field(raw, "sources", dict, tag)
    urls = [v for v in sources.values() if isinstance(v, str) and v.startswith("http")]
    if not urls or len(urls) != len(sources):
        raise CatalogError(f"Catalog entry {tag}: field 'sources' needs at least one URL")
    ints = {name: _positive(arch, name, tag) for name in _ARCH_INT_FIELDS}
    optional = {name: _optional(arch, name, tag) for name in _ARCH_OPTIONAL_INT_FIELDS}
    return CatalogEntry(
        tag=_field(raw, "tag", str, tag),
        family=_field(raw, "family", str, tag),
        display_name=_field(raw, "display_name", str, tag),
        parameter_count=_positive(raw, "parameter_count", tag),
        architecture=_field(arch, "architecture", str, tag),
        context_length=_positive(arch, "context_length", tag),
        quants=quants,
        default_quant=default_quant,
        sources=tuple(sorted(sources.items())),
        key_length=optional["key_length"],
        value_length=optional["value_length"],
        vocab_size=optional["vocab_size"],
        feed_forward_length=optional["feed_forward_length"] or 0,
        expert_count=optional["expert_count"] or 0,
        expert_used_count=optional["expert_used_count"] or 0,
        expert_feed_forward_length=optional["expert_feed_forward_length"] or 0,
        sliding_window=optional["sliding_window"] or 0,
        sliding_window_layers=optional["sliding_window_layers"] or 0,
        tied_embeddings=bool(arch.get("tied_embeddings", False)),
        note=str(raw.get("note", "")),
        tensor_types=_tensor_types(raw, tag),
        tensor_types_quants=tuple((raw.get("tensor_types") or {}).get("quants", ())),
        vision_parameter_count=optional["vision_parameter_count"] or 0,
        **ints,
    )


def _tensor_types(raw: Mapping[str, Any], tag: str) -> tuple[tuple[str, str], ...]:
    """Tensor types an entry's files keep whatever the recipe says, with the URL showing it."""
    kept = raw.get("tensor_types")
    if kept is None:
        return ()
    if not isinstance(kept, dict) or not str(kept.get("source", "")).startswith("https://"):
        raise CatalogError(f"Catalog entry {tag}: 'tensor_types' needs a 'source' URL")
    types = {k: v for k, v in kept.items() if k not in ("source", "quants")}
    if not all(isinstance(v, str) for v in types.values()):
        raise CatalogError(f"Catalog entry {tag}: 'tensor_types' values must be type names")
    return tuple(sorted(types.items()))


def _quant(raw: Any, tag: str) -> QuantOption:
    if not isinstance(raw, dict):
        raise CatalogError(f"Catalog entry {tag}: a quant is not an object")
    name = _field(raw, "quant", str, tag)
    if name not in FILE_TYPE_BASE:
        raise CatalogError(f"Catalog entry {tag}: quant {name!r} is not a llama.cpp file type")
    source = _field(raw, "size_source", str, tag)
    if source not in ("exact", "recipe"):
        raise CatalogError(
            f"Catalog entry {tag}: quant {name} size_source {source!r} is not exact or recipe"
        )
    url = str(raw.get("size_url", ""))
    if source == "exact" and not url.startswith("https://"):
        raise CatalogError(f"Catalog entry {tag}: quant {name} is 'exact' without a size_url")
    return QuantOption(
        quant=name,
        tag=_field(raw, "tag", str, tag),
        size_bytes=_positive(raw, "size_bytes", f"{tag} quant {name}"),
        size_source=source,
        size_url=url,
    )


def _field(raw: Mapping[str, Any], name: str, kind: type, tag: str) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CatalogError(
            f"Catalog entry {tag}: field '{name}' must be a {kind.__name__}, got {value!r}"
        )
    return value


def _positive(raw: Mapping[str, Any], name: str, tag: str) -> int:
    value = _field(raw, name, int, tag)
    if value <= 0:
        raise CatalogError(f"Catalog entry {tag}: field '{name}' must be positive, got {value}")
    return value


def _optional(raw: Mapping[str, Any], name: str, tag: str) -> int | None:
    return None if raw.get(name) is None else _positive(raw, name, tag)


def spec_for(entry: CatalogEntry, quant: str | None = None) -> ModelSpec:
    """The estimator's input for one catalog entry at one quantization."""
    option = entry.quant(quant)
    return ModelSpec(
        name=option.tag,
        architecture=entry.architecture,
        parameter_count=entry.parameter_count,
        block_count=entry.block_count,
        embedding_length=entry.embedding_length,
        head_count=entry.head_count,
        head_count_kv=entry.head_count_kv,
        context_length=entry.context_length,
        key_length=entry.key_length,
        value_length=entry.value_length,
        vocab_size=entry.vocab_size,
        expert_count=entry.expert_count,
        expert_used_count=entry.expert_used_count,
        sliding_window=entry.sliding_window,
        sliding_window_layers=entry.sliding_window_layers,
        file_size_bytes=option.size_bytes,
        quantization=option.quant,
        feed_forward_length=entry.feed_forward_length,
        expert_feed_forward_length=entry.expert_feed_forward_length,
        tied_embeddings=entry.tied_embeddings,
        tensor_types=(
            entry.tensor_types
            if not entry.tensor_types_quants or option.quant in entry.tensor_types_quants
            else ()
        ),
        vision_parameter_count=entry.vision_parameter_count,
    )


def recipe_size_bytes(entry: CatalogEntry, quant: str) -> int:
    """The tensor bytes of the entry's `quant` file by llama.cpp's recipe."""
    spec = spec_for(entry, entry.quant(quant).quant)
    return sum(tensor_bytes(t) for t in recipe_tensors(spec, quant))


@dataclass(frozen=True)
class FitRow:
    """One catalog model at one quantization, judged against this machine."""

    tag: str  # the quant's Ollama tag
    family: str
    display_name: str
    quant: str
    file_size_bytes: int
    size_source: SizeSource
    total_bytes: int  # what the load takes where it is placed (GPU + host)
    vram_bytes: int
    ram_bytes: int
    gpu_layers: int
    total_layers: int
    verdict: Verdict
    tokens_per_s_bound: float | None  # None when nothing can hold it
    gpu: DeviceParts = field(default_factory=DeviceParts)
    host: DeviceParts = field(default_factory=DeviceParts)
    parallel: int = 1


def fit_rows(
    catalog: Catalog,
    *,
    free_vram_bytes: int,
    total_vram_bytes: int,
    free_ram_bytes: int,
    gpu_bandwidth_gbps: float | None,
    ram_bandwidth_gbps: float,
    num_ctx: int = 4096,
    kv_cache_type: str = "f16",
    flash_attention: bool | None = None,
    parallel: int = 1,
) -> list[FitRow]:
    """Every catalog model and quantization with its estimate, placement and speed bound.

    Rows come in catalog order. total_vram_bytes is accepted for callers that show it; the
    placement uses what is free now. A quantized KV cache turns flash attention on. Each of
    `parallel` slots gets num_ctx tokens (capped at the model's trained context).
    """
    del total_vram_bytes
    fa = kv_cache_type != "f16" if flash_attention is None else flash_attention
    rows: list[FitRow] = []
    for entry in catalog.entries:
        for option in entry.quants:
            spec = spec_for(entry, option.quant)
            ctx = min(num_ctx, entry.context_length)
            estimate = estimate_memory(
                spec, num_ctx=ctx, kv_cache_type=kv_cache_type, flash_attention=fa,
                parallel=parallel,
            )  # fmt: skip
            placement = place(spec, estimate, free_vram_bytes, free_ram_bytes)
            speed = None  # and None where the GPU's bandwidth is not known (another host)
            if placement.verdict != "will not fit" and (
                gpu_bandwidth_gbps or not placement.gpu_layers
            ):
                speed = decode_speed_bound(
                    spec, estimate, placement,
                    gpu_bandwidth_gbps=gpu_bandwidth_gbps, ram_bandwidth_gbps=ram_bandwidth_gbps,
                )  # fmt: skip
            rows.append(
                FitRow(
                    tag=option.tag,
                    family=entry.family,
                    display_name=entry.display_name,
                    quant=option.quant,
                    file_size_bytes=option.size_bytes,
                    size_source=option.size_source,
                    total_bytes=placement.total_bytes,
                    vram_bytes=placement.vram_bytes,
                    ram_bytes=placement.ram_bytes,
                    gpu_layers=placement.gpu_layers,
                    total_layers=placement.total_layers,
                    verdict=placement.verdict,
                    tokens_per_s_bound=speed,
                    gpu=placement.gpu,
                    host=placement.host,
                    parallel=parallel,
                )
            )
    return rows
