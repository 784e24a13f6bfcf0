"""FP8 on the GPU path (vLLM): which `vllm serve` flags a model needs, and what it does to memory.

- Offline FP8 checkpoint (config.json `quantization_config.quant_method == "fp8"`, or compressed-tensors
  with float8 weights, e.g. the *-FP8-dynamic repos): vLLM reads the scales from the checkpoint; no flag.
- Dynamic (online) FP8 of a BF16/FP16 checkpoint: `--quantization fp8`: each Linear weight (not lm_head)
  is cast to FP8 E4M3 with a per-tensor scale at load, activations are scaled per token at run time;
  no calibration data needed.
- W8A8 runs on compute capability >= 8.9 (Ada, Hopper, Blackwell); 7.5..8.8 (Turing, Ampere) run the
  same weights as W8A16 through the FP8 Marlin kernel (memory saved, no FP8 tensor-core speed-up).
- `--kv-cache-dtype fp8` halves the KV cache independently of the weights.
Pure functions: the planner and `serve` call them; nothing here talks to a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deeplocal.models.errors import ModelError
from deeplocal.models.hf_meta import quantization_of

Fp8Mode = Literal["none", "fp8-dynamic", "fp8-checkpoint"]


@dataclass(frozen=True, slots=True)
class VllmQuantPlan:
    mode: Fp8Mode
    vllm_args: tuple[str, ...]
    weight_bytes_per_param: float  # for the planner's memory estimate
    kv_bytes_per_element: int
    compute: Literal["w8a8", "w8a16", "native"]
    note: str


def plan_vllm_quantization(config: dict, *, requested: str | None = None, kv_fp8: bool = False,
                           compute_capability: tuple[int, int] | None = None) -> VllmQuantPlan:
    """`requested` is None (serve as is) or "fp8" (dynamic FP8 when the checkpoint is not FP8 already)."""
    if requested not in (None, "fp8"):
        raise ModelError(f"GPU quantization {requested!r} is not supported; use 'fp8'")
    native_bytes = 2.0 if str(config.get("torch_dtype", "bfloat16")) in ("bfloat16", "float16") else 4.0
    checkpoint_fp8 = quantization_of(config, "") == "fp8"
    kv_args = ("--kv-cache-dtype", "fp8") if kv_fp8 else ()
    kv_bytes = 1 if kv_fp8 else 2
    if not checkpoint_fp8 and requested is None:
        return VllmQuantPlan("none", kv_args, native_bytes, kv_bytes, "native",
                             "served at the checkpoint's precision")
    if compute_capability is not None and compute_capability < (7, 5):
        raise ModelError(f"FP8 needs compute capability >= 7.5; this GPU is "
                         f"{compute_capability[0]}.{compute_capability[1]}")
    compute = "w8a8" if compute_capability is None or compute_capability >= (8, 9) else "w8a16"
    if checkpoint_fp8:
        return VllmQuantPlan("fp8-checkpoint", kv_args, 1.0, kv_bytes, compute,
                             "offline FP8 checkpoint: vLLM reads its scales, no --quantization flag")
    return VllmQuantPlan("fp8-dynamic", ("--quantization", "fp8", *kv_args), 1.0, kv_bytes, compute,
                         "dynamic FP8: per-tensor weight scales computed at load, no calibration")
