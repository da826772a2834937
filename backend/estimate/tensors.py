"""A model's tensors and their bytes: from the file itself (exact) or from its shapes (recipe).

Shapes follow llama.cpp's tensor layout for each architecture (llama-arch.cpp / llama-model.cpp,
ne0 first); types come from backend.estimate.quant_recipe; bytes per block from gguf's
GGML_QUANT_SIZES. The breakdown groups the bytes the way llama.cpp places them: the token
embedding, each repeating block, and the output layer (output weight, final norm, and the
vision tower Ollama loads beside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.estimate.compute_graph import feed_forward_width
from backend.estimate.quant_recipe import RecipeModel, recipe_type
from backend.estimate.spec import ModelSpec, TensorInfo

WeightsSource = Literal["exact", "recipe"]
QK_NORM_ARCHITECTURES = frozenset({"qwen3", "qwen3moe", "gemma3", "olmo2"})
POST_NORM_ARCHITECTURES = frozenset({"gemma2", "gemma3"})
QKV_BIAS_ARCHITECTURES = frozenset({"qwen2", "qwen2moe"})
FUSED_ARCHITECTURES = frozenset({"phi3"})  # attn_qkv and a gate+up ffn_up
BERT_ARCHITECTURES = frozenset({"bert", "nomic-bert", "jina-bert-v2"})


class TensorError(ValueError):
    """A tensor's type or shape cannot be sized; the message names it."""


def type_size(type_name: str) -> tuple[int, int]:
    """(elements per block, bytes per block) of a ggml type, from gguf's GGML_QUANT_SIZES."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        return GGML_QUANT_SIZES[GGMLQuantizationType[type_name.upper()]]
    except KeyError:
        raise TensorError(f"Unknown ggml tensor type {type_name!r}") from None


def tensor_bytes(tensor: TensorInfo) -> int:
    block, size = type_size(tensor.type)
    elements = 1
    for dim in tensor.shape:
        elements *= int(dim)
    return -(-elements // block) * size


@dataclass(frozen=True)
class WeightsBreakdown:
    """Tensor bytes grouped by where llama.cpp puts them."""

    token_embd_bytes: int  # always in host memory
    layer_bytes: tuple[int, ...]  # each repeating block: on the device of its layer
    output_bytes: int  # output weight (0 when tied), final norm, vision tower: the output layer
    tied_output_bytes: int  # the token embedding the output reuses (duplicated on the GPU)
    source: WeightsSource
    tensor_count: int

    @property
    def total_bytes(self) -> int:
        return self.token_embd_bytes + sum(self.layer_bytes) + self.output_bytes


def breakdown(
    tensors: tuple[TensorInfo, ...], block_count: int, source: WeightsSource
) -> WeightsBreakdown:
    """Group tensor bytes into token embedding, blocks and the output layer."""
    layers = [0] * block_count
    embd = output = 0
    names = set()
    for tensor in tensors:
        size = tensor_bytes(tensor)
        names.add(tensor.name)
        if tensor.name.startswith("blk."):
            index = int(tensor.name.split(".")[1])
            if 0 <= index < block_count:
                layers[index] += size
                continue
        if tensor.name == "token_embd.weight":
            embd += size
        else:
            output += size
    tied = embd if "output.weight" not in names else 0
    return WeightsBreakdown(embd, tuple(layers), output, tied, source, len(tensors))


def spec_weights(spec: ModelSpec, file_type: str | None = None) -> WeightsBreakdown:
    """The spec's own tensors when it has them (exact), else the recipe's for `file_type`."""
    wanted = (file_type or spec.quantization).upper()
    if spec.tensors and (not file_type or wanted == spec.quantization.upper()):
        return breakdown(spec.tensors, spec.block_count, "exact")
    return breakdown(recipe_tensors(spec, wanted), spec.block_count, "recipe")


def recipe_tensors(spec: ModelSpec, file_type: str) -> tuple[TensorInfo, ...]:
    """Every tensor of `spec` at the type llama.cpp's recipe gives it in a `file_type` file."""
    heads_kv = spec.head_count_kv or spec.head_count
    model = RecipeModel(
        architecture=spec.architecture,
        block_count=spec.block_count,
        expert_count=spec.expert_count,
        gqa=max(spec.head_count // max(heads_kv, 1), 1),
        tied_embeddings=spec.tied_embeddings,
    )
    kept = dict(spec.tensor_types)
    quantized = file_type.upper() not in ("F16", "BF16", "F32")
    result = []
    for name, shape in architecture_shapes(spec):
        # Ollama keeps a vision tower beside the text model as converted (F16)
        kind = "F16" if name.startswith("v.") else recipe_type(name, shape, file_type, model)
        for suffix, forced in kept.items():
            if quantized and name.endswith(suffix):
                kind = forced
        result.append(TensorInfo(name, kind, shape))
    return tuple(result)


def architecture_shapes(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor llama.cpp loads for this architecture."""
    e, vocab = spec.embedding_length, spec.vocab_size or 32000
    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (e, vocab))]
    if spec.architecture in BERT_ARCHITECTURES:
        shapes += [("token_types.weight", (e, 2)), ("token_embd_norm.weight", (e,)),
                   ("token_embd_norm.bias", (e,))]  # fmt: skip
    for il in range(spec.block_count):
        shapes += [(f"blk.{il}.{name}", shape) for name, shape in _block_shapes(spec, il)]
    if spec.architecture not in BERT_ARCHITECTURES:
        shapes.append(("output_norm.weight", (e,)))
        if not spec.tied_embeddings:
            shapes.append(("output.weight", (e, vocab)))
    if spec.vision_parameter_count:
        shapes.append(("v.encoder.weight", (spec.vision_parameter_count,)))
    return shapes


def _block_shapes(spec: ModelSpec, il: int) -> list[tuple[str, tuple[int, ...]]]:
    arch, e = spec.architecture, spec.embedding_length
    per_layer = spec.head_count_kv_per_layer
    heads_kv = per_layer[il] if il < len(per_layer) else spec.head_count_kv
    q, k = spec.head_count * spec.head_dim_k, heads_kv * spec.head_dim_k
    v, out = heads_kv * spec.head_dim_v, spec.head_count * spec.head_dim_v
    if arch in BERT_ARCHITECTURES:
        return _bert_block(spec)
    shapes: list[tuple[str, tuple[int, ...]]] = [("attn_norm.weight", (e,))]
    if arch in FUSED_ARCHITECTURES:
        shapes.append(("attn_qkv.weight", (e, q + k + v)))
    else:
        shapes += [("attn_q.weight", (e, q)), ("attn_k.weight", (e, k)), ("attn_v.weight", (e, v))]
    if arch in QKV_BIAS_ARCHITECTURES:
        shapes += [("attn_q.bias", (q,)), ("attn_k.bias", (k,)), ("attn_v.bias", (v,))]
    if arch in QK_NORM_ARCHITECTURES:
        shapes += [("attn_q_norm.weight", (spec.head_dim_k,)),
                   ("attn_k_norm.weight", (spec.head_dim_k,))]  # fmt: skip
    shapes += [("attn_output.weight", (out, e)), ("ffn_norm.weight", (e,))]
    if arch in POST_NORM_ARCHITECTURES:
        shapes += [("post_attention_norm.weight", (e,)), ("post_ffw_norm.weight", (e,))]
    return shapes + _ffn_shapes(spec)


def _ffn_shapes(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    e = spec.embedding_length
    if spec.expert_count and spec.expert_used_count:
        ff, n = spec.expert_feed_forward_length or feed_forward_width(spec), spec.expert_count
        return [
            ("ffn_gate_inp.weight", (e, n)),
            ("ffn_gate_exps.weight", (e, ff, n)),
            ("ffn_up_exps.weight", (e, ff, n)),
            ("ffn_down_exps.weight", (ff, e, n)),
        ]
    ff = feed_forward_width(spec)
    if spec.architecture in FUSED_ARCHITECTURES:
        return [("ffn_up.weight", (e, 2 * ff)), ("ffn_down.weight", (ff, e))]
    return [("ffn_gate.weight", (e, ff)), ("ffn_up.weight", (e, ff)), ("ffn_down.weight", (ff, e))]


def _bert_block(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    e = spec.embedding_length
    ff = spec.feed_forward_length or 4 * e
    return [
        ("attn_qkv.weight", (e, 3 * e)),
        ("attn_output.weight", (e, e)),
        ("attn_output_norm.weight", (e,)),
        ("attn_output_norm.bias", (e,)),
        ("ffn_up.weight", (e, ff)),
        ("ffn_gate.weight", (e, ff)),
        ("ffn_down.weight", (ff, e)),
        ("layer_output_norm.weight", (e,)),
        ("layer_output_norm.bias", (e,)),
    ]
