"""The curated catalog: its shape, self-consistent numbers, lookups and 'what fits' rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.estimate.catalog import Catalog, CatalogError, fit_rows, load_catalog, spec_for
from backend.units import GIB

CATALOG_PATH = Path(__file__).resolve().parents[2] / "data" / "catalog.json"
REQUIRED_TAGS = [
    "llama3:8b", "llama3:70b", "mistral:7b", "gemma:2b", "llama3.1:8b", "llama3.1:70b",
    "llama3.2:1b", "llama3.2:3b", "llama3.3:70b", "gemma2:2b", "gemma2:9b", "gemma2:27b",
    "gemma3:1b", "gemma3:4b", "gemma3:12b", "gemma3:27b", "qwen2.5:0.5b", "qwen2.5:72b",
    "phi3:mini", "phi3:medium", "phi4:14b", "mistral-nemo:12b", "mixtral:8x7b",
    "deepseek-r1:7b", "deepseek-r1:8b", "deepseek-r1:14b", "deepseek-r1:32b",
    "qwen2.5-coder:7b", "nomic-embed-text:v1.5",
]  # fmt: skip
# Plausible whole-file bits per weight: the bare block size up to ~1.6 bits of Q6_K/Q8_0 extras.
BARE_BITS = {"Q2_K": 2.63, "Q3_K_M": 3.44, "Q4_0": 4.5, "Q4_K_M": 4.5, "Q5_K_M": 5.5,
             "Q6_K": 6.56, "Q8_0": 8.5, "F16": 16.0}  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG_PATH)


def test_catalog_has_the_models_the_issue_lists(catalog: Catalog) -> None:
    assert len(catalog.entries) >= 30
    missing = [tag for tag in REQUIRED_TAGS if catalog.find(tag) is None]
    assert missing == []
    assert len([e for e in catalog.entries if e.family == "qwen3"]) >= 3


def test_every_entry_cites_sources(catalog: Catalog) -> None:
    for entry in catalog.entries:
        urls = dict(entry.sources)
        assert urls.get("architecture", "").startswith("https://"), entry.tag
        assert urls.get("tags", "").startswith("https://ollama.com/library/"), entry.tag


def test_attention_shapes_are_consistent(catalog: Catalog) -> None:
    for entry in catalog.entries:
        if entry.key_length is None:
            assert entry.embedding_length % entry.head_count == 0, entry.tag
        assert entry.head_count % entry.head_count_kv == 0, entry.tag
        assert entry.vocab_size and entry.vocab_size > 1000, entry.tag
        assert entry.feed_forward_length > 0, entry.tag


def test_moe_and_sliding_window_entries_carry_their_counts(catalog: Catalog) -> None:
    moe = [e for e in catalog.entries if "MoE" in e.display_name]
    assert {e.tag for e in moe} >= {"mixtral:8x7b"}
    for entry in moe:
        assert 0 < entry.expert_used_count < entry.expert_count, entry.tag
    for entry in catalog.entries:
        if entry.family in ("gemma2", "gemma3"):
            assert entry.sliding_window > 0, entry.tag
            assert 0 < entry.sliding_window_layers < entry.block_count, entry.tag


def test_quant_sizes_grow_with_bits_and_come_from_a_real_source(catalog: Catalog) -> None:
    for entry in catalog.entries:
        ordered = sorted(entry.quants, key=lambda q: q.order)
        sizes = [q.size_bytes for q in ordered]
        if entry.embedding_length % 256 == 0:  # else K-quants fall back to bigger legacy types
            assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), entry.tag
        for option in entry.quants:
            assert option.size_source in ("exact", "recipe"), option.tag
            bits = option.size_bytes * 8 / entry.parameter_count
            if entry.embedding_length % 256:
                continue
            # the bare block size, up to the extra bits of Q6_K/Q8_0/F16 tensors the recipe keeps
            assert BARE_BITS[option.quant] <= bits <= BARE_BITS[option.quant] + 2.0, option.tag


def test_old_defaults_and_kept_tensor_types_follow_the_library(catalog: Catalog) -> None:
    gemma = catalog.find("gemma:2b")
    assert gemma is not None and gemma.default_quant == "Q4_0" and gemma.vocab_size == 256128
    assert ("token_embd.weight", "Q8_0") in spec_for(gemma, "Q4_0").tensor_types
    assert spec_for(gemma, "F16").tensor_types == gemma.tensor_types  # applies to every file
    qwen3 = catalog.find("qwen3:32b")
    assert qwen3 is not None
    assert spec_for(qwen3, "Q4_K_M").tensor_types == (("attn_v.weight", "F16"),)
    assert spec_for(qwen3, "Q8_0").tensor_types == ()
    vision = catalog.find("gemma3:4b")
    assert vision is not None and 0.3e9 < vision.vision_parameter_count < 0.5e9


def test_exact_without_a_url_and_flat_bpw_sources_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda e: e["quants"][0].update(size_source="computed"))
    with pytest.raises(CatalogError, match="computed"):
        load_catalog(path)
    path = _write(tmp_path, lambda e: e["quants"][0].update(size_source="exact", size_url=""))
    with pytest.raises(CatalogError, match="size_url"):
        load_catalog(path)


def test_find_accepts_base_and_quant_tags(catalog: Catalog) -> None:
    entry = catalog.find("llama3.1:8b")
    assert entry is not None and entry.display_name.startswith("Llama 3.1 8B")
    assert catalog.find("llama3.1:8b-instruct-q8_0") is entry
    option = catalog.quant_for_tag("llama3.1:8b-instruct-q8_0")
    assert option is not None and option.quant == "Q8_0"
    assert catalog.find("no-such-model:1b") is None


def test_families_are_listed_once_in_catalog_order(catalog: Catalog) -> None:
    families = catalog.families()
    assert len(families) == len(set(families))
    assert families[0] == catalog.entries[0].family
    assert {"llama3.1", "qwen2.5", "gemma3", "deepseek-r1"} <= set(families)


def test_spec_for_carries_the_quant_file(catalog: Catalog) -> None:
    entry = catalog.find("mixtral:8x7b")
    assert entry is not None
    spec = spec_for(entry, "Q8_0")
    assert spec.quantization == "Q8_0"
    assert spec.file_size_bytes == entry.quant("Q8_0").size_bytes
    assert (spec.expert_count, spec.expert_used_count) == (8, 2)
    with pytest.raises(CatalogError, match="IQ2_XS"):
        spec_for(entry, "IQ2_XS")


def _write(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    document = json.loads(CATALOG_PATH.read_text())
    mutate(document["entries"][0])
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(document))
    return path


def test_a_missing_field_is_named_with_its_entry(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda e: e["architecture"].pop("head_count"))
    with pytest.raises(CatalogError, match=r"llama3:8b.*head_count"):
        load_catalog(path)


def test_a_negative_size_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda e: e["quants"][0].update(size_bytes=-5))
    with pytest.raises(CatalogError, match=r"llama3:8b.*size_bytes.*-5"):
        load_catalog(path)


def test_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.json")


def test_fit_rows_judge_each_quant_against_the_machine(catalog: Catalog) -> None:
    big = fit_rows(
        catalog,
        free_vram_bytes=80 * GIB,
        total_vram_bytes=80 * GIB,
        free_ram_bytes=256 * GIB,
        gpu_bandwidth_gbps=2000,
        ram_bandwidth_gbps=100,
        num_ctx=4096,
    )
    assert len(big) == sum(len(e.quants) for e in catalog.entries)
    by_tag = {row.tag: row for row in big}
    small = by_tag["llama3.2:1b-instruct-q4_K_M"]
    assert small.verdict == "full GPU offload" and small.gpu_layers == small.total_layers
    assert by_tag["llama3.1:70b-instruct-fp16"].verdict == "partial offload"
    assert small.tokens_per_s_bound and small.tokens_per_s_bound > 100

    cpu = fit_rows(
        catalog,
        free_vram_bytes=0,
        total_vram_bytes=0,
        free_ram_bytes=8 * GIB,
        gpu_bandwidth_gbps=None,
        ram_bandwidth_gbps=50,
    )
    verdicts = {row.tag: row.verdict for row in cpu}
    assert verdicts["qwen2.5:0.5b-instruct-q4_K_M"] == "CPU only"
    assert verdicts["llama3.3:70b-instruct-q4_K_M"] == "will not fit"
