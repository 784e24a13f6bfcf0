"""Weight precisions and KV-cache dtypes, with the bytes they cost.

HF-format precisions (what vLLM loads) keep the embedding and lm_head in 16 bits, as AWQ, GPTQ and FP8
checkpoints do. GGUF precisions use the whole-tensor bits per weight that llama.cpp's quantize README
measures for its k-quant mixes (Llama-2-7B table: Q4_K_M 4.84, Q5_K_M 5.68, Q6_K 6.56) and the block
sizes of the plain formats (Q8_0: 34 bytes per 32 weights = 8.5; Q4_0: 18/32 = 4.5; Q4_1: 20/32 = 5.0).
llama.cpp stores the output tensor (lm_head, or the embedding when tied) as Q6_K, except for Q8_0 and
16-bit files, and falls back to Q8_0 when the row length is not a multiple of 256 (k-quant block size).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from deeplocal.planner.errors import UnknownPrecision

Q6_K_BPW = 6.5625  # 210 bytes per 256 weights
Q8_0_BPW = 8.5
K_QUANT_BLOCK = 256


class Format(str, Enum):
    HF = "hf"  # safetensors checkpoints, served by vLLM
    GGUF = "gguf"  # llama.cpp files


class Compute(str, Enum):
    """Which tensor-core rate the matmuls run at."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP8 = "fp8"
    INT8 = "int8"


@dataclass(frozen=True, slots=True)
class Precision:
    name: str
    bits_per_weight: float
    format: Format
    compute: Compute
    vllm_quantization: str | None = None  # value for vLLM's --quantization, None: none or auto-detected
    gguf_type: str | None = None  # llama.cpp file type name
    quantizes_embeddings: bool = False  # HF quant formats keep embedding/lm_head at 16 bits
    uniform: bool = False  # bits_per_weight already covers every tensor (measured from a file)
    note: str = ""
    aliases: tuple[str, ...] = ()


PRECISIONS: tuple[Precision, ...] = (
    Precision("fp32", 32.0, Format.HF, Compute.FP32, quantizes_embeddings=True, aliases=("float32", "f32")),
    Precision("bf16", 16.0, Format.HF, Compute.BF16, quantizes_embeddings=True, aliases=("bfloat16",)),
    Precision("fp16", 16.0, Format.HF, Compute.BF16, quantizes_embeddings=True, aliases=("float16", "f16")),
    Precision("fp8", 8.0, Format.HF, Compute.FP8, vllm_quantization="fp8",
              note="FP8 weights (W8A8 where the GPU has FP8 tensor cores, else W8A16 via Marlin)",
              aliases=("float8", "e4m3")),
    Precision("int8", 8.0, Format.HF, Compute.INT8,
              note="W8A8 INT8 checkpoint (compressed-tensors); vLLM detects it from the checkpoint",
              aliases=("w8a8",)),
    Precision("int4-awq", 4.25, Format.HF, Compute.BF16, vllm_quantization="awq",
              note="4-bit weights, group 128 with fp16 scales and 4-bit zeros (W4A16)",
              aliases=("awq", "int4")),
    Precision("int4-gptq", 4.25, Format.HF, Compute.BF16, vllm_quantization="gptq",
              note="4-bit weights, group 128 (W4A16)", aliases=("gptq",)),
    Precision("q8_0", Q8_0_BPW, Format.GGUF, Compute.BF16, gguf_type="Q8_0", quantizes_embeddings=True),
    Precision("q6_k", 6.56, Format.GGUF, Compute.BF16, gguf_type="Q6_K", quantizes_embeddings=True),
    Precision("q5_k_m", 5.68, Format.GGUF, Compute.BF16, gguf_type="Q5_K_M", quantizes_embeddings=True),
    Precision("q4_k_m", 4.84, Format.GGUF, Compute.BF16, gguf_type="Q4_K_M", quantizes_embeddings=True,
              aliases=("q4",)),
    Precision("q4_1", 5.0, Format.GGUF, Compute.BF16, gguf_type="Q4_1", quantizes_embeddings=True),
    Precision("q4_0", 4.5, Format.GGUF, Compute.BF16, gguf_type="Q4_0", quantizes_embeddings=True),
)


@dataclass(frozen=True, slots=True)
class KvDtype:
    name: str
    bytes_per_element: float
    vllm_name: str | None  # --kv-cache-dtype value; None: vLLM cannot store it
    llamacpp_name: str | None  # --cache-type-k/v value; None: llama.cpp cannot store it


KV_DTYPES: tuple[KvDtype, ...] = (
    KvDtype("fp16", 2.0, "auto", "f16"),
    KvDtype("bf16", 2.0, "auto", "bf16"),
    KvDtype("fp8", 1.0, "fp8", None),
    KvDtype("q8_0", Q8_0_BPW / 8, None, "q8_0"),
    KvDtype("q4_0", 4.5 / 8, None, "q4_0"),
)


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def precision_from_name(name: str) -> Precision:
    key = _norm(name)
    for p in PRECISIONS:
        if key in {_norm(p.name), *(_norm(a) for a in p.aliases)}:
            return p
    raise UnknownPrecision(f"unknown precision {name!r}; known: {', '.join(p.name for p in PRECISIONS)}",
                           param="precision")


def kv_dtype_from_name(name: str) -> KvDtype:
    key = _norm(name)
    aliases = {"f16": "fp16", "float16": "fp16", "auto": "fp16", "fp8_e4m3": "fp8", "f8": "fp8"}
    key = aliases.get(key, key)
    for k in KV_DTYPES:
        if key == k.name:
            return k
    raise UnknownPrecision(f"unknown KV cache dtype {name!r}; known: {', '.join(k.name for k in KV_DTYPES)}",
                           param="kv_dtype")


def output_tensor_bpw(precision: Precision, *, hidden: int) -> float:
    """Bits per weight llama.cpp gives the output tensor; for HF formats, 16 unless fp32."""
    if precision.uniform:
        return precision.bits_per_weight
    if precision.format is Format.HF:
        return precision.bits_per_weight if precision.quantizes_embeddings else 16.0
    if precision.bits_per_weight >= Q8_0_BPW:
        return precision.bits_per_weight
    return Q6_K_BPW if hidden % K_QUANT_BLOCK == 0 else Q8_0_BPW


def embedding_bpw(precision: Precision, *, hidden: int) -> float:
    """Bits per weight of the input embedding table (not tied to the output)."""
    if precision.uniform:
        return precision.bits_per_weight
    if precision.format is Format.HF:
        return precision.bits_per_weight if precision.quantizes_embeddings else 16.0
    return precision.bits_per_weight
