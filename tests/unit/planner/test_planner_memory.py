"""Hand-computed expectations for a dense GQA model, an MLA model and a MoE model."""

from __future__ import annotations

import pytest

from deeplocal.planner.fit import FitInputs, device_memory
from deeplocal.planner.gpus import gpu_from_name
from deeplocal.planner.memory import GIB, kv_bytes_per_token, kv_bytes_per_token_per_device, weight_bytes
from deeplocal.planner.params import count_params
from deeplocal.planner.precisions import kv_dtype_from_name, precision_from_name
from deeplocal.planner.specs import AttentionKind, model_from_name

FP16 = kv_dtype_from_name("fp16")
FP8 = kv_dtype_from_name("fp8")
BF16 = precision_from_name("bf16")


# --- dense GQA: DeepSeek-R1-Distill-Qwen-7B (Qwen2.5-Math-7B widths) ---------------------------------

def test_dense_gqa_params_by_hand() -> None:
    spec = model_from_name("deepseek-r1-distill-qwen-7b")
    h, ffn, vocab, layers = 3584, 18944, 152064, 28
    q = o = h * 28 * 128  # 28 query heads of 128
    kv = 2 * h * 4 * 128  # 4 K/V heads of 128
    bias = 28 * 128 + 2 * 4 * 128
    layer = q + kv + o + bias + 3 * h * ffn + 2 * h
    expected = layers * layer + 2 * vocab * h + h  # untied embedding and lm_head, final norm
    assert count_params(spec).total == expected
    assert abs(expected / 1e9 - 7.62) < 0.01  # the model card's 7.62B


def test_dense_gqa_kv_cache_by_hand() -> None:
    spec = model_from_name("deepseek-r1-distill-qwen-7b")
    assert spec.attention.kind is AttentionKind.GQA
    per_token = 2 * 28 * 4 * 128 * 2  # K and V x layers x kv heads x head dim x 2 bytes
    assert kv_bytes_per_token(spec, FP16) == per_token == 57_344
    assert kv_bytes_per_token(spec, FP8) == per_token / 2
    # 8 sequences x 8192 tokens = 3.5 GiB exactly
    assert kv_bytes_per_token(spec, FP16) * 8192 * 8 == 3.5 * GIB
    # TP 2 halves the heads per rank; TP 8 has only 4 heads, so each is replicated
    assert kv_bytes_per_token_per_device(spec, FP16, tp=2, pp=1) == per_token / 2
    assert kv_bytes_per_token_per_device(spec, FP16, tp=8, pp=1) == per_token / 4


def test_dense_weights_bf16_and_awq() -> None:
    spec = model_from_name("deepseek-r1-distill-qwen-7b")
    n = count_params(spec)
    assert weight_bytes(spec, BF16).total == 2 * n.total
    awq = weight_bytes(spec, precision_from_name("int4-awq")).total
    embed_and_head = n.embedding + n.output
    assert awq == int(((n.total - embed_and_head) * 4.25 + embed_and_head * 16) / 8)


def test_device_memory_breakdown_on_one_h100() -> None:
    spec = model_from_name("deepseek-r1-distill-qwen-7b")
    inp = FitInputs(spec, BF16, FP16, "vllm", context=8192, concurrency=8)
    mem = device_memory(inp, gpu_from_name("h100-sxm"), tp=1, pp=1)
    assert mem.weights == 2 * count_params(spec).total
    assert mem.kv == int(3.5 * GIB)
    assert mem.budget == int(79.65 * GIB * 0.90)
    assert mem.fits and mem.kv_budget > mem.kv
    assert mem.used == mem.weights + mem.kv + mem.activations + mem.framework


# --- MLA: DeepSeek-V3 -------------------------------------------------------------------------------

def test_mla_kv_cache_by_hand() -> None:
    spec = model_from_name("deepseek-v3")
    assert spec.attention.kind is AttentionKind.MLA
    per_token = 61 * (512 + 64) * 2  # layers x (kv_lora_rank + rope dim) x 2 bytes
    assert kv_bytes_per_token(spec, FP16) == per_token == 70_272
    assert kv_bytes_per_token(spec, FP8) == 61 * 576
    # the latent is not split across tensor-parallel ranks: each holds all of it for its layers
    assert kv_bytes_per_token_per_device(spec, FP16, tp=8, pp=1) == per_token
    assert kv_bytes_per_token_per_device(spec, FP16, tp=8, pp=2) == per_token / 2


def test_mla_v3_params_total_and_active() -> None:
    n = count_params(model_from_name("deepseek-v3"))
    assert n.total == pytest.approx(671e9, rel=0.002)  # 671B on the model card (main model, no MTP)
    assert n.active == pytest.approx(37e9, rel=0.02)  # 37B activated


def test_v3_fp8_weights_keep_embeddings_in_bf16() -> None:
    spec = model_from_name("deepseek-v3")
    n = count_params(spec)
    fp8 = weight_bytes(spec, precision_from_name("fp8")).total
    assert fp8 == (n.total - n.embedding - n.output) + 2 * (n.embedding + n.output)


# --- MoE: DeepSeek-Coder-V2-Lite (MLA + 64 routed experts, top-6, 2 shared) --------------------------

def test_moe_params_by_hand() -> None:
    spec = model_from_name("deepseek-coder-v2-lite")
    h, vocab = 2048, 102400
    attn = (h * 16 * 192) + (h * 576 + 512) + 512 * 16 * (128 + 128) + 16 * 128 * h
    expert = 3 * h * 1408
    dense_layer = attn + 3 * h * 10944 + 2 * h
    moe_layer = attn + 2 * h + (64 + 2) * expert + 64 * h  # routed + shared experts + router
    expected = dense_layer + 26 * moe_layer + 2 * vocab * h + h
    n = count_params(spec)
    assert n.total == expected
    assert n.total == pytest.approx(15.7e9, rel=0.005)
    assert n.active == expected - 26 * (64 - 6) * expert
    assert n.per_expert == expert and n.routed == 26 * 64 * expert


def test_moe_kv_and_expert_bytes() -> None:
    spec = model_from_name("deepseek-coder-v2-lite")
    assert kv_bytes_per_token(spec, FP16) == 27 * 576 * 2
    wb = weight_bytes(spec, BF16)
    assert wb.per_routed_expert == 2 * 3 * 2048 * 1408
    assert wb.routed == 26 * 64 * wb.per_routed_expert
    assert wb.non_routed == wb.total - wb.routed


# --- GGUF pricing ---------------------------------------------------------------------------------

def test_gguf_q4_1_smollm2_matches_the_bundled_file() -> None:
    # The bundled SmolLM2 Q4_1 GGUF holds 96,576,768 bytes of tensors (read from the file with gguf).
    # Its tied embedding is the output tensor: Q6_K is wanted, but 576 is not a multiple of 256, so
    # llama.cpp falls back to Q8_0; the rest is Q4_1 (5.0 bits per weight).
    spec = model_from_name("smollm2-135m")
    assert count_params(spec).total == 134_515_008
    got = weight_bytes(spec, precision_from_name("q4_1")).total
    assert got == pytest.approx(96_576_768, rel=0.01)


def test_gguf_q4_k_m_output_tensor_is_q6_k() -> None:
    spec = model_from_name("deepseek-r1-distill-qwen-7b")
    n = count_params(spec)
    got = weight_bytes(spec, precision_from_name("q4_k_m")).total
    assert got == int((n.embedding * 4.84 + n.output * 6.5625 + (n.total - n.embedding - n.output) * 4.84) / 8)
