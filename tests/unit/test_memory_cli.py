"""`app.py estimate`: the printed breakdown, verdict, speed bound, and errors for unknown models."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest

from backend.estimate.cli import configure_parser, run
from tests.support.tiny_gguf import smollm2_path

CATALOG_PATH = Path(__file__).resolve().parents[2] / "data" / "catalog.json"


def _run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    out = io.StringIO()
    code = run(parser.parse_args(list(argv)), CATALOG_PATH, out=out)
    return code, out.getvalue()


def test_catalog_model_prints_breakdown_verdict_and_speed() -> None:
    code, text = _run("llama3.1:8b", "--ctx", "8192", "--vram-gb", "24", "--ram-gb", "32")
    assert code == 0
    assert "llama3.1:8b-instruct-q4_K_M" in text
    for label in ("Weights", "KV cache", "Compute graph", "Output buffer", "Total"):
        assert label in text
    assert re.search(r"KV cache\s+1\.00 GiB", text)
    assert "full GPU offload" in text and "33/33 layers" in text
    assert "tok/s" in text


def test_small_gpu_gives_partial_offload_and_quant_flag_picks_the_file() -> None:
    code, text = _run("llama3.1:8b", "--quant", "Q8_0", "--vram-gb", "4", "--ram-gb", "32")
    assert code == 0
    assert "llama3.1:8b-instruct-q8_0" in text and "partial offload" in text


def test_quantized_kv_cache_turns_flash_attention_on() -> None:
    code, text = _run("qwen2.5:7b", "--kv-cache", "q8_0", "--ram-gb", "32")
    assert code == 0
    assert "turned it on" in text and "flash attention on" in text
    assert "CPU only" in text


@pytest.mark.slow
def test_gguf_path_is_read_from_its_header() -> None:
    code, text = _run(str(smollm2_path()), "--ctx", "2048", "--ram-gb", "8")
    assert code == 0
    assert re.search(r"KV cache\s+45\.0 MiB", text)
    assert "Q4_1" in text


def test_unknown_tag_exits_2_and_suggests_close_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = _run("lama3.1:8b")
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown model 'lama3.1:8b'" in err and "llama3.1:8b" in err


def test_unoffered_quant_is_an_error_naming_what_is_offered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = _run("gemma3:4b", "--quant", "Q2_K")
    assert code == 2
    assert "offered: Q4_K_M, Q8_0, F16" in capsys.readouterr().err
