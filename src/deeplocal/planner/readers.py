"""Read a ModelSpec from a Hugging Face config.json or a GGUF file (the only I/O in the planner).

`spec_from_hf_config` and `spec_from_gguf_fields` are pure; `read_model_file` opens the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplocal.planner.errors import ModelFileError
from deeplocal.planner.precisions import Compute, Format, Precision
from deeplocal.planner.specs import Attention, AttentionKind, ModelSpec, MoE

_QKV_BIAS_TYPES = {"qwen2", "qwen2_moe"}


@dataclass(frozen=True, slots=True)
class ModelFile:
    spec: ModelSpec
    precision: Precision | None  # measured from the file (GGUF), or None (config.json)
    weight_bytes: int | None = None  # GGUF: bytes of all tensors
    n_params: int | None = None  # GGUF: elements of all tensors


def _need(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    raise ModelFileError(f"config has none of {keys}", param="from_config")


def _attention_hf(cfg: dict[str, Any], hidden: int) -> Attention:
    heads = int(_need(cfg, "num_attention_heads", "n_head"))
    if cfg.get("kv_lora_rank"):
        rope = int(cfg.get("qk_rope_head_dim", 64))
        nope = int(cfg.get("qk_nope_head_dim", 128))
        return Attention(AttentionKind.MLA, heads, heads, nope + rope, kv_lora_rank=int(cfg["kv_lora_rank"]),
                         q_lora_rank=int(cfg.get("q_lora_rank") or 0), rope_dim=rope,
                         v_head_dim=int(cfg.get("v_head_dim", nope)))
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    bias = bool(cfg.get("attention_bias", cfg.get("model_type") in _QKV_BIAS_TYPES))
    return Attention(AttentionKind.MHA if kv == heads else AttentionKind.GQA, heads, kv, head_dim, qkv_bias=bias)


def _moe_hf(cfg: dict[str, Any]) -> MoE | None:
    routed = cfg.get("n_routed_experts") or cfg.get("num_experts") or cfg.get("num_local_experts")
    if not routed:
        return None
    shared = int(cfg.get("n_shared_experts") or 0)
    expert_ffn = int(_need(cfg, "moe_intermediate_size", "intermediate_size"))
    if not shared and cfg.get("shared_expert_intermediate_size"):  # qwen2_moe: one wide shared expert
        shared = max(1, round(cfg["shared_expert_intermediate_size"] / expert_ffn))
    return MoE(int(routed), int(_need(cfg, "num_experts_per_tok")), shared, expert_ffn,
               first_dense_layers=int(cfg.get("first_k_dense_replace") or 0))


def spec_from_hf_config(cfg: dict[str, Any], *, name: str) -> ModelSpec:
    """A ModelSpec from the fields of a Hugging Face config.json."""
    cfg = {**cfg, **(cfg.get("text_config") or {})}
    hidden = int(_need(cfg, "hidden_size", "n_embd", "d_model"))
    quant = (cfg.get("quantization_config") or {}).get("quant_method", "")
    dtype = "fp8" if quant == "fp8" else {"float32": "fp32", "float16": "fp16"}.get(
        str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"), "bf16")
    return ModelSpec(
        name=name, n_layers=int(_need(cfg, "num_hidden_layers", "n_layer")), hidden=hidden,
        ffn=int(_need(cfg, "intermediate_size", "moe_intermediate_size")), vocab=int(_need(cfg, "vocab_size")),
        attention=_attention_hf(cfg, hidden), moe=_moe_hf(cfg),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)), native_dtype=dtype,
        max_context=int(cfg.get("max_position_embeddings") or 4096),
    )


def spec_from_gguf_fields(fields: dict[str, Any], *, name: str, has_output_tensor: bool) -> ModelSpec:
    """A ModelSpec from GGUF metadata (`{arch}.block_count`, `{arch}.attention.head_count`, ...)."""
    arch = str(fields.get("general.architecture", "llama"))

    def get(key: str, default: Any = None) -> Any:
        value = fields.get(f"{arch}.{key}", default)
        if value is None:
            raise ModelFileError(f"GGUF has no {arch}.{key}", param="from_config")
        return value[0] if isinstance(value, list) and value else value

    hidden = int(get("embedding_length"))
    heads = int(get("attention.head_count"))
    vocab = int(fields.get(f"{arch}.vocab_size") or fields.get("tokenizer.ggml.tokens_count") or 0)
    if not vocab:
        raise ModelFileError("GGUF has no vocabulary size", param="from_config")
    if fields.get(f"{arch}.attention.kv_lora_rank"):
        rope = int(get("rope.dimension_count", 64))
        key_len = int(get("attention.key_length", 192))
        att = Attention(AttentionKind.MLA, heads, heads, key_len, kv_lora_rank=int(get("attention.kv_lora_rank")),
                        q_lora_rank=int(get("attention.q_lora_rank", 0)), rope_dim=rope,
                        v_head_dim=int(get("attention.value_length", key_len - rope)))
    else:
        kv = int(get("attention.head_count_kv", heads))
        head_dim = int(get("attention.key_length", hidden // heads))
        att = Attention(AttentionKind.MHA if kv == heads else AttentionKind.GQA, heads, kv, head_dim,
                        qkv_bias=arch in _QKV_BIAS_TYPES)
    moe = None
    if int(get("expert_count", 0) or 0):
        moe = MoE(int(get("expert_count")), int(get("expert_used_count")), int(get("expert_shared_count", 0)),
                  int(get("expert_feed_forward_length")), first_dense_layers=int(get("leading_dense_block_count", 0)))
    return ModelSpec(name=name, n_layers=int(get("block_count")), hidden=hidden, ffn=int(get("feed_forward_length")),
                     vocab=vocab, attention=att, moe=moe, tied_embeddings=not has_output_tensor,
                     native_dtype="gguf", max_context=int(get("context_length", 4096)))


def _read_gguf(path: Path) -> ModelFile:
    try:
        import gguf  # the `gguf` package from llama.cpp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelFileError("reading GGUF files needs the `gguf` package", param="from_config") from exc
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError) as exc:
        raise ModelFileError(f"{path} is not a readable GGUF file: {exc}", param="from_config") from exc
    fields: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key != "tokenizer.ggml.model":
            if key == "tokenizer.ggml.tokens":
                fields["tokenizer.ggml.tokens_count"] = len(field.data)
            continue
        try:
            fields[key] = field.contents()
        except (ValueError, IndexError, TypeError):
            continue
    names = {t.name for t in reader.tensors}
    name = str(fields.get("general.name") or path.stem)
    spec = spec_from_gguf_fields(fields, name=name, has_output_tensor="output.weight" in names)
    n_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    file_type = gguf.LlamaFileType(int(fields.get("general.file_type", 0))).name.removeprefix("MOSTLY_")
    measured = Precision(f"gguf-{file_type.lower()}", 8 * n_bytes / n_params, Format.GGUF, Compute.BF16,
                         gguf_type=file_type, quantizes_embeddings=True, uniform=True,
                         note=f"measured from {path.name}: {n_bytes} bytes for {n_params} weights")
    return ModelFile(spec, measured, weight_bytes=n_bytes, n_params=n_params)


def read_model_file(path: str | Path, *, name: str | None = None) -> ModelFile:
    """A ModelSpec (and, for GGUF, the measured precision) from config.json, a model folder or a .gguf."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise ModelFileError(f"no such file: {p}", param="from_config")
    if p.suffix.lower() == ".gguf":
        return _read_gguf(p)
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{p} is not JSON: {exc}", param="from_config") from exc
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{p}: expected a JSON object", param="from_config")
    return ModelFile(spec_from_hf_config(cfg, name=name or p.parent.name or "custom"), None)
