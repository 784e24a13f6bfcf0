"""Roofline estimates of decode and prefill speed. Every figure here is an estimate.

Decode step time = max(bytes read / achievable bandwidth, FLOPs / achievable compute) + communication
+ offload streaming. Bytes read: the weights a step touches (MoE: only the experts the batch routes to)
plus the KV cache of every running sequence. At small batch the bytes dominate (memory-bound); at large
batch the FLOPs do (compute-bound). Prefill is compute-bound for any useful prompt length.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from deeplocal.planner.gpus import Device
from deeplocal.planner.memory import kv_bytes_per_token_per_device, weight_bytes
from deeplocal.planner.params import count_params
from deeplocal.planner.precisions import KvDtype, Precision
from deeplocal.planner.specs import AttentionKind, ModelSpec

# Achievable fractions of datasheet peaks (estimates; see docs/planner.md).
BANDWIDTH_EFFICIENCY = {"gpu": 0.80, "cpu": 0.60}
DECODE_MFU = 0.50
PREFILL_MFU = 0.60
NVLINK_LATENCY_S = 20e-6  # one small all-reduce
PCIE_LATENCY_S = 40e-6
LAYER_OVERHEAD_S = {"gpu": 15e-6, "cpu": 5e-6}  # kernel launches/syncs per layer per step
MOE_LAYER_OVERHEAD_S = 40e-6  # router, top-k, permute and grouped GEMM launches per MoE layer
INTERNODE_LATENCY_S = 25e-6
INTERNODE_GBS = 25.0  # 200 Gb/s InfiniBand/RoCE per device


@dataclass(frozen=True, slots=True)
class Layout:
    """How a model is spread: tensor parallel within a node, pipeline stages across nodes."""

    device: Device
    tp: int = 1
    pp: int = 1
    offloaded_bytes_per_device: int = 0
    offload_gbs: float = 25.0  # bandwidth the offloaded weights are read at each step


@dataclass(frozen=True, slots=True)
class DecodeEstimate:
    batch: int
    kv_len: int
    token_latency_ms: float  # time between two tokens of one sequence (TPOT)
    tokens_per_s_per_seq: float
    aggregate_tokens_per_s: float
    bound: str  # "memory" | "compute"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PrefillEstimate:
    prompt_tokens: int
    seconds: float  # time to first token for one request arriving alone
    bound: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def attention_flops_per_position(spec: ModelSpec, *, absorbed: bool) -> float:
    """FLOPs one query token spends on one cached position, all layers (QK^T plus PV)."""
    att = spec.attention
    if att.kind is AttentionKind.MLA:
        # Decode runs MLA "absorbed": scores and values against the latent (kv_lora + rope wide).
        width = (2 * att.kv_lora_rank + att.rope_dim) if absorbed else (att.head_dim + att.v_head_dim)
        return 2 * spec.n_layers * att.n_heads * width
    return 4 * spec.n_layers * att.n_heads * att.head_dim


def expected_distinct_experts(n_routed: int, n_active: int, batch: int) -> float:
    """Experts a batch touches per MoE layer, if routing were uniform: E(1 - (1 - k/E)^B)."""
    return n_routed * (1 - (1 - n_active / n_routed) ** batch)


def _efficiency(device: Device) -> float:
    return BANDWIDTH_EFFICIENCY["cpu" if device.is_cpu else "gpu"]


def _stage_time(spec: ModelSpec, precision: Precision, kv: KvDtype, lay: Layout, *, batch: int,
                kv_len: int) -> tuple[float, str]:
    """Seconds for one pipeline stage to advance `batch` sequences by one token."""
    dev, n = lay.device, lay.tp * lay.pp
    wb = weight_bytes(spec, precision)
    touched = wb.total
    if spec.moe is not None:
        distinct = expected_distinct_experts(spec.moe.n_routed, spec.moe.n_active, batch)
        touched = wb.non_routed + wb.per_routed_expert * spec.moe_layers * distinct
    kv_read = batch * kv_len * kv_bytes_per_token_per_device(spec, kv, tp=lay.tp, pp=lay.pp)
    bytes_read = touched / n + kv_read - lay.offloaded_bytes_per_device * (touched / wb.total)
    t_mem = bytes_read / (dev.bandwidth_gbs * 1e9 * _efficiency(dev))
    flops = (2 * count_params(spec).active * batch
             + batch * kv_len * attention_flops_per_position(spec, absorbed=True)) / n
    t_compute = flops / (dev.tflops(precision.compute) * 1e12 * DECODE_MFU)
    t_offload = lay.offloaded_bytes_per_device * (touched / wb.total) / (lay.offload_gbs * 1e9)
    t_comm = 0.0
    if lay.tp > 1:
        latency = NVLINK_LATENCY_S if dev.link_gbs > 64 else PCIE_LATENCY_S
        payload = batch * spec.hidden * 2 * 2 * (lay.tp - 1) / lay.tp
        t_comm = 2 * (spec.n_layers / lay.pp) * (latency + payload / (dev.link_gbs * 1e9))
    kind = "cpu" if dev.is_cpu else "gpu"
    t_fixed = (spec.n_layers * LAYER_OVERHEAD_S[kind] + spec.moe_layers * MOE_LAYER_OVERHEAD_S) / lay.pp
    bound = "memory" if t_mem + t_offload >= t_compute else "compute"
    return max(t_mem, t_compute) + t_offload + t_comm + t_fixed, bound


def decode(spec: ModelSpec, precision: Precision, kv: KvDtype, lay: Layout, *, batch: int,
           kv_len: int) -> DecodeEstimate:
    """Decode speed with `batch` sequences running, each holding `kv_len` tokens of context."""
    batch = max(1, batch)
    micro = math.ceil(batch / lay.pp)
    stage, bound = _stage_time(spec, precision, kv, lay, batch=micro, kv_len=kv_len)
    hops = (lay.pp - 1) * (INTERNODE_LATENCY_S + micro * spec.hidden * 2 / (INTERNODE_GBS * 1e9))
    latency = lay.pp * stage + hops
    in_flight = min(batch, lay.pp)  # micro-batches in the pipeline at once
    aggregate = in_flight * micro / latency if batch >= lay.pp else batch / latency
    return DecodeEstimate(batch=batch, kv_len=kv_len, token_latency_ms=round(latency * 1e3, 3),
                          tokens_per_s_per_seq=round(1 / latency, 2),
                          aggregate_tokens_per_s=round(aggregate, 1), bound=bound)


def prefill(spec: ModelSpec, precision: Precision, lay: Layout, *, prompt_tokens: int) -> PrefillEstimate:
    """Time to process one prompt alone (TTFT without queueing). Pipeline stages run one after another."""
    dev = lay.device
    p = prompt_tokens
    flops = 2 * count_params(spec).active * p + (p * p / 2) * attention_flops_per_position(spec, absorbed=False)
    t_compute = flops / (lay.tp * dev.tflops(precision.compute) * 1e12 * PREFILL_MFU)
    wb = weight_bytes(spec, precision).total  # a long prompt routes to every expert: all weights once
    t_mem = wb / (lay.tp * dev.bandwidth_gbs * 1e9 * _efficiency(dev))
    t_offload = lay.offloaded_bytes_per_device * lay.pp / (lay.offload_gbs * 1e9)
    bound = "compute" if t_compute >= t_mem else "memory"
    return PrefillEstimate(prompt_tokens=p, seconds=round(max(t_compute, t_mem) + t_offload, 4), bound=bound)
