"""Parameter counts derived from a ModelSpec (exact for the tensor shapes; norms included)."""

from __future__ import annotations

from dataclasses import dataclass

from deeplocal.planner.specs import Attention, AttentionKind, ModelSpec


@dataclass(frozen=True, slots=True)
class ParamCounts:
    total: int
    active: int  # parameters touched by one token (MoE: shared + top-k experts)
    embedding: int  # input embedding table
    output: int  # lm_head; 0 when tied to the embedding
    per_expert: int  # one routed expert of one layer; 0 for dense models
    routed_layers: int  # layers holding routed experts
    routed: int  # all routed-expert parameters (what expert sparsity acts on)


def attention_params(att: Attention, hidden: int) -> int:
    """Weights of one attention block (projections, biases, MLA norms)."""
    if att.kind is AttentionKind.MLA:
        q_width = att.n_heads * att.head_dim  # nope + rope per head
        if att.q_lora_rank:
            q = hidden * att.q_lora_rank + att.q_lora_rank + att.q_lora_rank * q_width
        else:
            q = hidden * q_width
        kv_a = hidden * (att.kv_lora_rank + att.rope_dim) + att.kv_lora_rank  # down-projection + norm
        kv_b = att.kv_lora_rank * att.n_heads * (att.head_dim - att.rope_dim + att.v_head_dim)
        out = att.n_heads * att.v_head_dim * hidden
        return q + kv_a + kv_b + out
    q_width = att.n_heads * att.head_dim
    kv_width = att.n_kv_heads * att.head_dim
    weights = hidden * q_width + 2 * hidden * kv_width + q_width * hidden
    bias = q_width + 2 * kv_width if att.qkv_bias else 0
    return weights + bias


def ffn_params(hidden: int, intermediate: int) -> int:
    """A gated (SwiGLU) FFN: gate, up and down projections."""
    return 3 * hidden * intermediate


def count_params(spec: ModelSpec) -> ParamCounts:
    h = spec.hidden
    attn = attention_params(spec.attention, h)
    norms = 2 * h
    dense_layer = attn + ffn_params(h, spec.ffn) + norms
    embedding = spec.vocab * h
    output = 0 if spec.tied_embeddings else spec.vocab * h
    total = dense_layer * spec.dense_layers + embedding + output + h  # + final norm
    active = total
    per_expert = 0
    routed = 0
    if spec.moe is not None:
        m = spec.moe
        per_expert = ffn_params(h, m.expert_ffn)
        shared = m.n_shared * per_expert
        router = m.n_routed * h
        moe_layer_fixed = attn + norms + shared + router
        routed = m.n_routed * per_expert * spec.moe_layers
        total += (moe_layer_fixed + m.n_routed * per_expert) * spec.moe_layers
        active += (moe_layer_fixed + m.n_active * per_expert) * spec.moe_layers
    return ParamCounts(total=total, active=active, embedding=embedding, output=output,
                       per_expert=per_expert, routed_layers=spec.moe_layers, routed=routed)
