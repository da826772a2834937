"""The compute buffer of llama.cpp's worst-case graph: the activations alive at its peak.

Fitted per model family (GraphShape). The attention spans the KV cache's cells, so the facts
both share (cell padding, encoder architectures without a causal KV cache) live here too and
backend.estimate.memory reads them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.estimate.spec import ModelSpec

# llama.cpp pads the KV cache to 256 cells (llama_context: n_ctx = GGML_PAD(n_ctx, 256)).
KV_CELL_PADDING = 256
NON_CAUSAL_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2"})


def round_up(value: int, multiple: int) -> int:
    """value rounded up to a multiple of `multiple` (ggml's GGML_PAD)."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class GraphShape:
    """Per-token f32 columns live at the peak of each phase of one layer, beyond the big ones.

    Fitted on llama.cpp's CPU compute buffers of tiny models of each family (see
    bench/estimate_accuracy.py): counts of E = n_embd, Q = n_head * head_dim and
    KV = n_head_kv * head_dim columns that are alive next to KQ (attention), next to the
    FFN activations (feed-forward) and next to the logits (output).
    """

    attn_e: int = 3
    attn_q: int = 2
    attn_kv: int = 2
    ffn_e: int = 3
    out_e: int = 3
    swa_attn_e: int = 5  # sliding-window layers (they peak when the window spans the context)
    swa_attn_q: int = 2


GRAPH_SHAPES: dict[str, GraphShape] = {
    # Gemma 2: post-attention and post-FFN norms and the soft-capped logits keep two more
    # n_embd columns alive.
    "gemma2": GraphShape(attn_e=5, ffn_e=5, out_e=5),
    # Gemma 3: in its global layers only one Q-sized tensor sits beside KQ; its SWA layers
    # keep as many as Gemma 2's.
    "gemma3": GraphShape(attn_q=1, ffn_e=5),
}


def feed_forward_width(spec: ModelSpec) -> int:
    """The FFN width, or (when unknown) what the parameter count leaves after attention."""
    if spec.feed_forward_length:
        return spec.feed_forward_length
    e, layers = spec.embedding_length, max(spec.block_count, 1)
    q = spec.head_count * spec.head_dim_k
    kv = spec.head_count_kv * (spec.head_dim_k + spec.head_dim_v)
    embeddings = (spec.vocab_size or 32000) * e * (1 if spec.tied_embeddings else 2)
    per_layer = (spec.parameter_count - embeddings) / layers - e * (2 * q + kv)
    experts = max(spec.expert_count, 1)
    return max(int(per_layer / (3 * e * experts)), e)


def attended_cells(
    spec: ModelSpec, num_ctx: int, parallel: int, t: int, swa_full: bool
) -> tuple[int, int]:
    """KV cells the worst-case graph attends to: every slot's (Ollama runs one unified cache of
    num_ctx x parallel cells), and the sliding window's cells (0 without one)."""
    n_kv = round_up(num_ctx * parallel, KV_CELL_PADDING)
    if not spec.sliding_window:
        return n_kv, 0
    swa = n_kv if swa_full else min(n_kv, round_up(spec.sliding_window * parallel + t, 256))
    return n_kv, swa


def graph_input_bytes(
    spec: ModelSpec,
    num_ctx: int,
    *,
    flash_attention: bool = False,
    n_ubatch: int = 512,
    parallel: int = 1,
    swa_full: bool = False,
) -> int:
    """The host part of the compute buffer when layers run on a GPU (CUDA_Host): the graph's
    inputs, i.e. one ubatch's token embeddings (looked up where token_embd lives, in host
    memory) and the attention masks (f32, f16 with flash attention)."""
    t = min(n_ubatch, num_ctx * parallel)
    if spec.architecture in NON_CAUSAL_ARCHITECTURES:
        n_kv, swa_kv = t, 0
    else:
        n_kv, swa_kv = attended_cells(spec, num_ctx, parallel, t, swa_full)
    mask_elem = 2 if flash_attention else 4
    return 4 * t * spec.embedding_length + (n_kv + swa_kv) * t * mask_elem


def compute_buffer_bytes(
    spec: ModelSpec,
    num_ctx: int,
    *,
    flash_attention: bool = False,
    n_ubatch: int = 512,
    parallel: int = 1,
    swa_full: bool = False,
) -> int:
    """Peak of llama.cpp's worst-case graph (n_ubatch tokens, every token an output).

    ggml's graph allocator frees a tensor after its last use, so the buffer is the largest
    set of tensors alive at one time. Three moments compete (T = tokens in the ubatch,
    n_kv = KV cells one sequence attends to, all activations f32):
    - attention: KQ = n_kv x T x n_head (softmax and Gemma's soft-cap run in place; with
      flash attention KQ is never materialised) plus the KQ mask(s) (f32, or f16 with flash
      attention; a second one over the window for SWA models) and the Q/K/V/residual columns;
    - feed-forward: gate, up and their product (T x n_ff each; for MoE x experts used) plus the
      mask, which stays alive until the last layer's attention;
    - output: logits T x n_vocab plus the final hidden states.
    """
    t = min(n_ubatch, num_ctx * parallel)
    e = spec.embedding_length
    shape = GRAPH_SHAPES.get(spec.architecture, GraphShape())
    vocab = spec.vocab_size or 32000
    q = spec.head_count * spec.head_dim_k
    kv = spec.head_count_kv * spec.head_dim_k
    mask_elem = 2 if flash_attention else 4
    swa_kv = 0
    if spec.architecture in NON_CAUSAL_ARCHITECTURES:
        n_kv = t
        vocab = 0  # embeddings, no logits
    else:
        n_kv, swa_kv = attended_cells(spec, num_ctx, parallel, t, swa_full)
    masks = (n_kv + swa_kv) * t * mask_elem

    def attention_peak(cells: int, e_cols: int, q_cols: int) -> int:
        kq = 0 if flash_attention else spec.head_count * cells
        return masks + 4 * t * (kq + e_cols * e + q_cols * q + shape.attn_kv * kv)

    attention = attention_peak(n_kv, shape.attn_e, shape.attn_q)
    if swa_kv:
        attention = max(attention, attention_peak(swa_kv, shape.swa_attn_e, shape.swa_attn_q))
    if spec.expert_count and spec.expert_used_count:
        k = spec.expert_used_count
        ff = spec.expert_feed_forward_length or feed_forward_width(spec)
        # gate/up/product per used expert, expert outputs, router logits and weights
        ffn_cols = 3 * ff * k + k * e + 2 * e + 2 * spec.expert_count
    else:
        ffn_cols = 3 * feed_forward_width(spec) + shape.ffn_e * e
    feed_forward = masks + 4 * t * ffn_cols
    output = 4 * t * (vocab + shape.out_e * e)
    return max(attention, feed_forward, output)
