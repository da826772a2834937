"""llama.cpp's quantization recipe: which ggml type each tensor gets for a file type.

A port of `llama_tensor_get_type` (llama.cpp src/llama-quant.cpp) for the file types Ollama's
library publishes (legacy, K-quants, F16/BF16/F32), and of Ollama's own port of it
(server/quantization.go), which agrees on these types. Where the two differ by era, the rule
follows the files the library actually holds (checked in data/published_sizes.json):
- a fused `attn_qkv` (phi3) gets Q5_K in Q4_K_M files and Q6_K in Q5_K_M files, as llama.cpp
  did until 2025 and Ollama still does;
- the output weight, and the token embedding when it is tied to it, get Q6_K (Q8_0 when its
  row length is not a multiple of the block size, and in Q8_0 files).
A tensor whose row length does not divide into the chosen type's blocks falls back the way
`tensor_type_fallback` does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0).
"""

from __future__ import annotations

from dataclasses import dataclass

# llama_ftype_get_default_type: the type every quantizable tensor starts from.
FILE_TYPE_BASE: dict[str, str] = {
    "F32": "F32", "F16": "F16", "BF16": "BF16",
    "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1", "Q8_0": "Q8_0",
    "Q2_K": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
}  # fmt: skip
# File types in the order of their size, smallest first (for "a smaller quantization").
FILE_TYPE_ORDER: tuple[str, ...] = (
    "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M", "Q4_1", "Q5_0",
    "Q5_K_S", "Q5_K_M", "Q5_1", "Q6_K", "Q8_0", "F16", "BF16", "F32",
)  # fmt: skip
# ggml block sizes (elements per block), for the row-length fallbacks; bytes come from gguf.
_BLOCK: dict[str, int] = {"Q2_K": 256, "Q3_K": 256, "Q4_K": 256, "Q5_K": 256, "Q6_K": 256}
_FALLBACK: dict[str, str] = {
    "Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}  # fmt: skip
_NOT_QUANTIZED = (
    "_norm.weight", "ffn_gate_inp.weight", "token_types.weight", "position_embd.weight",
    "ssm_conv1d.weight", "attn_rel_b.weight",
)  # fmt: skip
_UNQUANTIZED = frozenset({"F32", "F16", "BF16"})


class RecipeError(ValueError):
    """The recipe does not know this file type; the message names it."""


@dataclass(frozen=True)
class RecipeModel:
    """The model facts the recipe reads (llama_hparams / llm_type in llama.cpp)."""

    architecture: str
    block_count: int
    expert_count: int = 0
    gqa: int = 1  # n_head / n_head_kv
    tied_embeddings: bool = False

    @property
    def is_70b(self) -> bool:
        """llama.cpp's LLM_TYPE_70B: 80-layer llama / qwen2 models get a Q5_K attn_v."""
        return self.block_count == 80 and self.architecture in ("llama", "qwen2")


def base_type(file_type: str) -> str:
    try:
        return FILE_TYPE_BASE[file_type.upper()]
    except KeyError:
        known = ", ".join(FILE_TYPE_BASE)
        raise RecipeError(f"Unknown file type {file_type!r}; known: {known}") from None


def is_quantizable(name: str, shape: tuple[int, ...]) -> bool:
    """tensor_allows_quantization: 2D/3D weights, not norms, routers or position tables."""
    return (
        len(shape) >= 2
        and name.endswith("weight")
        and not name.startswith(("v.", "mm."))  # vision towers stay as converted
        and not any(part in name for part in _NOT_QUANTIZED)
    )


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """The layers K-quant "M" files give more bits: first and last eighth, every third between."""
    eighth = n_layers // 8
    return i_layer < eighth or i_layer >= 7 * n_layers // 8 or (i_layer - eighth) % 3 == 2


def recipe_type(
    name: str, shape: tuple[int, ...], file_type: str, model: RecipeModel, source: str = "F32"
) -> str:
    """The ggml type llama.cpp's quantizer writes for this tensor of a `file_type` file."""
    ftype = file_type.upper()
    default = base_type(ftype)
    if not is_quantizable(name, shape):
        return "F32" if len(shape) < 2 or "_norm" in name else source
    if default in _UNQUANTIZED:
        return default
    chosen = _mix_type(name, shape, ftype, default, model)
    return _fallback(chosen, shape[0])


def _layer(name: str) -> int:
    if name.startswith("blk."):
        return int(name.split(".")[1])
    return 0


def _mix_type(name: str, shape: tuple[int, ...], ftype: str, default: str, m: RecipeModel) -> str:
    """llama_tensor_get_type_impl for the legacy and K-quant file types."""
    n = m.block_count
    il = _layer(name)
    eight_experts = m.expert_count == 8
    if name == "output.weight" or (m.tied_embeddings and name == "token_embd.weight"):
        if shape[0] % _BLOCK.get(default, 32) != 0:
            return "Q8_0"
        return default if default == "Q8_0" else "Q6_K"
    if name == "token_embd.weight":
        return default
    if "attn_v.weight" in name:
        return _attn_v(ftype, default, il, m)
    if "attn_k.weight" in name:
        return "Q8_0" if eight_experts else default
    if "attn_qkv.weight" in name:
        table = {"Q3_K_M": "Q4_K", "Q3_K_L": "Q4_K", "Q4_K_M": "Q5_K", "Q5_K_M": "Q6_K"}
        return table.get(ftype, default)
    if "ffn_down" in name:
        return _ffn_down(ftype, default, il, n)
    if "attn_output.weight" in name:
        if eight_experts:
            return "Q5_K" if ftype in ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M") else default
        return {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(ftype, default)
    return default


def _attn_v(ftype: str, default: str, il: int, m: RecipeModel) -> str:
    chosen = default
    if ftype == "Q2_K":
        chosen = "Q4_K" if m.gqa >= 4 else "Q3_K"
    elif ftype == "Q3_K_M":
        chosen = "Q5_K" if il < 2 else "Q4_K"
    elif ftype == "Q3_K_L":
        chosen = "Q5_K"
    elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(il, m.block_count):
        chosen = "Q6_K"
    elif ftype == "Q4_K_S" and il < 4:
        chosen = "Q5_K"
    if m.is_70b and chosen in ("Q3_K", "Q4_K"):
        chosen = "Q5_K"
    if m.expert_count == 8:
        chosen = "Q8_0"
    return chosen


def _ffn_down(ftype: str, default: str, il: int, n: int) -> str:
    if ftype == "Q2_K":
        return "Q3_K"
    if ftype == "Q3_K_M":
        return "Q5_K" if il < n // 16 else "Q4_K"
    if ftype == "Q3_K_L":
        return "Q5_K"
    if ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(il, n):
        return "Q6_K"
    if ftype == "Q4_K_S" and il < n // 8:
        return "Q5_K"
    return default


def _fallback(chosen: str, row_length: int) -> str:
    """tensor_type_fallback: a type whose blocks fit the row, else F16."""
    block = _BLOCK.get(chosen, 32)
    if row_length % block == 0:
        return chosen
    chosen = _FALLBACK.get(chosen, chosen)
    return chosen if row_length % _BLOCK.get(chosen, 32) == 0 else "F16"
