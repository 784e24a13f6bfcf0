"""Memory arithmetic: weights, KV cache, activations/workspace and framework overhead, in bytes.

Exact: weights (given the format's bits per weight) and KV cache bytes (the same formula the engines
use). Estimates (labelled so in every result): activations, engine workspace and framework overhead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from deeplocal.planner.params import count_params
from deeplocal.planner.precisions import KvDtype, Precision, embedding_bpw, output_tensor_bpw
from deeplocal.planner.specs import AttentionKind, ModelSpec

GIB = 1024**3
MIB = 1024**2

# Estimates, documented in docs/planner.md.
CUDA_CONTEXT_BYTES = int(0.6 * GIB)  # CUDA/ROCm context + cuBLAS workspace per device
NCCL_BYTES = int(0.3 * GIB)  # communicator buffers per device when tensor/pipeline parallel
CUDA_GRAPH_BYTES = int(0.5 * GIB)  # vLLM's captured decode graphs (logs report 0.3-1.5 GiB)
LLAMACPP_VOCAB_BYTES_PER_TOKEN = 400  # tokenizer tables + metadata; measured 18.5 MiB for 49k tokens
LLAMACPP_UBATCH = 512


@dataclass(frozen=True, slots=True)
class WeightBytes:
    total: int
    per_routed_expert: int  # one routed expert in one layer; 0 for dense models
    routed: int  # all routed experts

    @property
    def non_routed(self) -> int:
        return self.total - self.routed


def weight_bytes(spec: ModelSpec, precision: Precision) -> WeightBytes:
    """Bytes of all weights in `precision` (embedding and output priced as the format stores them)."""
    c = count_params(spec)
    bpw = precision.bits_per_weight
    emb_bits = c.embedding * (output_tensor_bpw(precision, hidden=spec.hidden) if spec.tied_embeddings
                              else embedding_bpw(precision, hidden=spec.hidden))
    out_bits = c.output * output_tensor_bpw(precision, hidden=spec.hidden)
    body_bits = (c.total - c.embedding - c.output) * bpw
    total = int((emb_bits + out_bits + body_bits) / 8)
    per_expert = int(c.per_expert * bpw / 8)
    return WeightBytes(total=total, per_routed_expert=per_expert, routed=int(c.routed * bpw / 8))


def kv_bytes_per_token(spec: ModelSpec, kv: KvDtype) -> float:
    """KV cache bytes one token costs across all layers, unsharded.

    GQA/MHA: 2 (K and V) x layers x kv_heads x head_dim x bytes.
    MLA:     layers x (kv_lora_rank + rope_dim) x bytes (the compressed latent and the shared rope key).
    """
    att = spec.attention
    if att.kind is AttentionKind.MLA:
        return spec.n_layers * (att.kv_lora_rank + att.rope_dim) * kv.bytes_per_element
    return 2 * spec.n_layers * att.n_kv_heads * att.head_dim * kv.bytes_per_element


def kv_bytes_per_token_per_device(spec: ModelSpec, kv: KvDtype, *, tp: int, pp: int) -> float:
    """KV bytes per token held by one device under tensor parallel `tp` and pipeline parallel `pp`.

    K/V heads are split across TP ranks but replicated once there are fewer heads than ranks; the MLA
    latent is not split by heads at all, so every TP rank holds the whole latent of its layers.
    """
    att = spec.attention
    layers_share = kv_bytes_per_token(spec, kv) / pp
    if att.kind is AttentionKind.MLA:
        return layers_share
    heads_per_rank = max(1.0, att.n_kv_heads / tp)
    return layers_share * heads_per_rank / att.n_kv_heads


def vllm_activation_bytes(spec: ModelSpec, *, tp: int, batched_tokens: int, max_seqs: int) -> int:
    """Estimate of vLLM's profiled activation peak for one forward of `batched_tokens` tokens.

    Largest live tensors of one layer in 16 bits (hidden states, the QKV output, the gate+up output,
    and for MoE the top-k expanded intermediate) plus fp32 logits for the sampled rows.
    """
    h = spec.hidden
    att = spec.attention
    qkv = (att.n_heads + 2 * att.n_kv_heads) * att.head_dim / tp
    ffn = 2 * spec.ffn / tp
    if spec.moe is not None:
        ffn = max(ffn, 2 * spec.moe.expert_ffn * spec.moe.n_active / tp)
    per_token = (4 * h + qkv + ffn) * 2
    logits = max_seqs * spec.vocab / tp * 4
    return int(batched_tokens * per_token + logits)


def llamacpp_compute_bytes(spec: ModelSpec, *, n_ctx: int, n_ubatch: int = LLAMACPP_UBATCH) -> int:
    """Estimate of llama.cpp's compute buffer: fp32 logits for a micro-batch plus attention scratch.

    Calibrated on llama.cpp (llama-cpp-python 0.3.36, CPU) with SmolLM2-135M: it reported 99.4 MiB at
    n_ctx 2048 and 166.4 MiB at 8192; this formula gives 108 and 144 MiB (about +-15%).
    """
    return int(n_ubatch * (4 * spec.vocab + 12 * n_ctx))


def framework_bytes(*, engine: str, is_cpu: bool, parallel: bool, vocab: int) -> int:
    """Per-device runtime overhead outside weights, KV and activations (estimate)."""
    if is_cpu:
        return LLAMACPP_VOCAB_BYTES_PER_TOKEN * vocab
    extra = NCCL_BYTES if parallel else 0
    if engine == "vllm":
        return CUDA_CONTEXT_BYTES + CUDA_GRAPH_BYTES + extra
    return CUDA_CONTEXT_BYTES + extra + LLAMACPP_VOCAB_BYTES_PER_TOKEN * vocab


@dataclass(frozen=True, slots=True)
class DeviceMemory:
    """One device's memory plan, bytes. `kv` is what the requested concurrency x context needs."""

    capacity: int
    budget: int  # what the engine may use (vLLM: gpu_memory_utilization x capacity)
    weights: int
    kv: int
    activations: int  # estimate
    framework: int  # estimate
    offloaded: int = 0  # weights kept in host RAM instead

    @property
    def used(self) -> int:
        return self.weights + self.kv + self.activations + self.framework

    @property
    def kv_budget(self) -> int:
        """Bytes left for the KV cache after weights, activations and overhead."""
        return self.budget - (self.weights + self.activations + self.framework)

    @property
    def fits(self) -> bool:
        return self.used <= self.budget

    def to_dict(self) -> dict[str, float]:
        out = {k: round(v / GIB, 3) for k, v in asdict(self).items()}
        out.update(used=round(self.used / GIB, 3), kv_budget=round(self.kv_budget / GIB, 3))
        return {f"{k}_gib": v for k, v in out.items()}
