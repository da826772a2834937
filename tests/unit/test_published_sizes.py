"""llama.cpp's quantization recipe against what was published about real files of catalog tags.

data/published_sizes.json holds, with the URL of each, the file sizes llama.cpp or Ollama
printed for a tag's file and the count of tensors of each type llama.cpp listed; the recipe
must give the same counts and a size within 1 % (and within the printed rounding).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backend.estimate.catalog import Catalog, load_catalog, recipe_size_bytes, spec_for
from backend.estimate.spec import TensorInfo
from backend.estimate.tensors import recipe_tensors, tensor_bytes

ROOT = Path(__file__).resolve().parents[2]
FACTS = json.loads((ROOT / "data" / "published_sizes.json").read_text())["facts"]
GIB = 1024**3


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "data" / "catalog.json")


def _tensors(catalog: Catalog, fact: dict[str, Any]) -> tuple[TensorInfo, ...]:
    entry = catalog.find(fact["tag"])
    assert entry is not None, fact["tag"]
    return recipe_tensors(spec_for(entry, fact["quant"]), fact["quant"])


def _label(fact: dict[str, Any]) -> str:
    return f"{fact['tag']}-{fact['quant']}"


def test_the_facts_cover_ten_tags_and_five_architectures(catalog: Catalog) -> None:
    tags = {f["tag"] for f in FACTS}
    architectures = {catalog.find(t).architecture for t in tags}  # type: ignore[union-attr]
    assert len(tags) >= 10 and len(architectures) >= 5
    assert {"gemma", "qwen2", "qwen3"} <= architectures
    assert any(catalog.find(t).expert_count for t in tags)  # type: ignore[union-attr]
    assert all(f["url"].startswith("https://") for f in FACTS)


@pytest.mark.parametrize("fact", [f for f in FACTS if "size_gib" in f], ids=_label)
def test_recipe_size_matches_the_printed_size(catalog: Catalog, fact: dict[str, Any]) -> None:
    tensors = _tensors(catalog, fact)
    size = sum(tensor_bytes(t) for t in tensors if t.name not in fact.get("excludes", ()))
    printed = fact["size_gib"] * GIB
    assert abs(size - printed) <= 0.01 * printed
    rounding = 0.5 * 10 ** -fact["size_decimals"] * GIB
    assert abs(size - printed) <= rounding, f"{size / GIB:.3f} GiB vs printed {fact['size_gib']}"


@pytest.mark.parametrize("fact", [f for f in FACTS if "tensor_types" in f], ids=_label)
def test_recipe_gives_the_listed_tensor_types(catalog: Catalog, fact: dict[str, Any]) -> None:
    entry = catalog.find(fact["tag"])
    assert entry is not None
    counts: Counter[str] = Counter()
    for tensor in _tensors(catalog, fact):
        split = fact.get("experts_split") and tensor.name.endswith("_exps.weight")
        counts[tensor.type.lower()] += entry.expert_count if split else 1
    published = fact["tensor_types"]
    assert {t: counts[t.lower()] for t in published} == published
    if "f32" in published:  # every type the file has is listed: nothing more in the recipe
        assert set(counts) == {t.lower() for t in published}


@pytest.mark.parametrize("fact", [f for f in FACTS if "tensors" in f], ids=_label)
def test_recipe_tensors_match_a_published_tensor_list(
    catalog: Catalog, fact: dict[str, Any]
) -> None:
    ours = {t.name: (t.type, list(t.shape)) for t in _tensors(catalog, fact)}
    for name, (kind, shape) in fact["tensors"].items():
        assert ours[name] == (kind, shape), name
    size_gb = recipe_size_bytes(catalog.find(fact["tag"]), fact["quant"]) / 1e9  # type: ignore[arg-type]
    assert abs(size_gb - fact["size_gb"]) <= 0.5 * 10 ** -fact["size_decimals"]


def test_catalog_recipe_rows_hold_the_recipe_size(catalog: Catalog) -> None:
    for entry in catalog.entries:
        for option in entry.quants:
            assert option.size_bytes == recipe_size_bytes(entry, option.quant), option.tag


def test_exact_rows_name_a_published_fact(catalog: Catalog) -> None:
    published = {(f["tag"], f["quant"]): f["url"] for f in FACTS}
    exact = [(e, q) for e in catalog.entries for q in e.quants if q.size_source == "exact"]
    assert exact
    for entry, option in exact:
        assert published.get((entry.tag, option.quant)) == option.size_url, option.tag
