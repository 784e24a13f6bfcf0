"""Converter checks without torch: a tiny llama GGUF is exported to a HF folder (test helper below),
converted back by our converter, and llama.cpp must produce the same logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from deeplocal.models.convert import convert_folder, permute_rope
from deeplocal.models.errors import UnsupportedArchitecture
from deeplocal.models.gguf_meta import read_gguf_info
from deeplocal.models.llama_lowlevel import LlamaRunner, quiet_llama
from deeplocal.models.safetensors_io import write_safetensors
from deeplocal.models.tiny import _byte_tokens

HF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_hf(gguf_path: Path, folder: Path, *, dtype_bf16: bool = False) -> Path:
    """GGUF (tiny llama) -> HF llama folder: the inverse of what the converter does."""
    reader = GGUFReader(gguf_path)
    info = read_gguf_info(gguf_path)
    tensors = {}
    for t in reader.tensors:
        data = np.array(t.data, dtype=np.float32).reshape(tuple(reversed([int(x) for x in t.shape])))
        if t.name == "token_embd.weight":
            tensors["model.embed_tokens.weight"] = data
        elif t.name == "output_norm.weight":
            tensors["model.norm.weight"] = data
        elif t.name == "output.weight":
            tensors["lm_head.weight"] = data
        else:
            _, layer, kind, _ = t.name.split(".")
            if kind == "attn_q":
                data = unpermute(data, info.n_head)
            elif kind == "attn_k":
                data = unpermute(data, info.n_head_kv)
            tensors[f"model.layers.{layer}.{HF_NAMES[kind]}.weight"] = data
    folder.mkdir(parents=True)
    big = tuple(n for n, a in tensors.items() if a.ndim == 2) if dtype_bf16 else ()
    write_safetensors(folder / "model.safetensors", tensors, bf16=big)
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": info.n_embd,
              "intermediate_size": 512, "num_hidden_layers": info.n_layers, "num_attention_heads": info.n_head,
              "num_key_value_heads": info.n_head_kv, "max_position_embeddings": info.context_length,
              "vocab_size": info.vocab_size, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "bos_token_id": 257, "eos_token_id": 257}
    (folder / "config.json").write_text(json.dumps(config))
    vocab = {tok: i for i, tok in enumerate(_byte_tokens() + ["he"])}
    tokenizer = {"version": "1.0", "added_tokens": [{"id": 257, "content": "<|endoftext|>", "special": True,
                                                     "single_word": False, "lstrip": False, "rstrip": False,
                                                     "normalized": False}],
                 "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                                                       "trim_offsets": True, "use_regex": True},
                 "post_processor": None, "decoder": {"type": "ByteLevel"},
                 "model": {"type": "BPE", "vocab": vocab, "merges": ["h e"], "byte_fallback": False}}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
         "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}))
    return folder


def logits(path: Path, tokens: list[int]) -> np.ndarray:
    with quiet_llama(), LlamaRunner(path, n_ctx=64, n_batch=64) as runner:
        return runner.decode(tokens, start=0, all_logits=True)


TOKENS = [104, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 257, 33]


def test_permutation_is_invertible() -> None:
    w = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    assert np.array_equal(unpermute(permute_rope(w, 4), 4), w)
    assert not np.array_equal(permute_rope(w, 4), w)


def test_round_trip_f32_gives_identical_logits(tiny_gguf: Path, tmp_path: Path) -> None:
    folder = export_hf(tiny_gguf, tmp_path / "hf")
    out = convert_folder(folder, tmp_path / "back.gguf", out_type="F32")
    info = read_gguf_info(out)
    assert info.quantization == "F32" and info.n_head_kv == 2 and info.has_chat_template
    reader = GGUFReader(out)
    assert reader.fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert reader.fields["tokenizer.ggml.merges"].contents() == ["h e"]
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == 257
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert types[257] == 3 and types[0] == 1  # CONTROL for the special token, NORMAL otherwise
    np.testing.assert_allclose(logits(out, TOKENS), logits(tiny_gguf, TOKENS), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("out_type", ["F16", "BF16"])
def test_half_precision_outputs_agree(tiny_gguf: Path, tmp_path: Path, out_type: str) -> None:
    folder = export_hf(tiny_gguf, tmp_path / "hf", dtype_bf16=out_type == "BF16")
    out = convert_folder(folder, tmp_path / f"back-{out_type}.gguf", out_type=out_type)
    assert read_gguf_info(out).quantization == out_type
    a, b = logits(out, TOKENS), logits(tiny_gguf, TOKENS)
    assert np.array_equal(a.argmax(-1), b.argmax(-1))
    assert float(np.abs(a - b).max()) < 0.05


def test_unsupported_architecture_is_a_clear_error(tiny_gguf: Path, tmp_path: Path) -> None:
    folder = export_hf(tiny_gguf, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "mamba",
                                                             "architectures": ["MambaForCausalLM"]}))
    with pytest.raises(UnsupportedArchitecture, match="'mamba'.*supported: llama, mistral, qwen2"):
        convert_folder(folder, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_rope_settings_from_transformers_4_and_5_configs() -> None:
    from deeplocal.models.convert import Hparams

    base = {"model_type": "qwen2", "num_attention_heads": 4, "num_hidden_layers": 1, "hidden_size": 64,
            "intermediate_size": 128, "vocab_size": 10}
    v4 = Hparams.from_config(base | {"rope_theta": 1e6, "rope_scaling": None})
    v5 = Hparams.from_config(base | {"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}})
    assert v4.rope_theta == v5.rope_theta == 1e6 and v4.rope_scaling is None and v5.rope_scaling is None
    yarn = Hparams.from_config(base | {"rope_parameters": {"rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0,
                                                           "original_max_position_embeddings": 32768}})
    assert yarn.rope_scaling["factor"] == 4.0 and yarn.arch == "qwen2"


def test_llama3_rope_freqs_follow_the_published_formula() -> None:
    from deeplocal.models.convert import Hparams, llama3_rope_freqs

    config = {"model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 1, "hidden_size": 4096,
              "intermediate_size": 14336, "vocab_size": 128256, "rope_theta": 500000.0,
              "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
    freqs = llama3_rope_freqs(Hparams.from_config(config))
    assert freqs.shape == (64,) and freqs[0] == 1.0 and freqs[-1] == 8.0  # high freqs kept, low scaled
    assert np.all(np.diff(freqs) >= 0) and 1.0 < freqs[32] < 8.0 and int(((freqs > 1) & (freqs < 8)).sum()) == 6


def test_qwen2_path_no_permutation_and_biases(tiny_gguf: Path, tmp_path: Path) -> None:
    """HF rotate-half weights run as llama.cpp's qwen2 (NeoX rope, no permutation) must equal the same
    weights permuted for llama.cpp's llama: the tiny llama exported as a qwen2 folder gives its logits."""
    from deeplocal.models.safetensors_io import iter_tensors

    folder = export_hf(tiny_gguf, tmp_path / "hf")
    tensors = dict(iter_tensors(folder / "model.safetensors"))
    tensors = {k: np.array(v) for k, v in tensors.items()}
    for i in range(2):
        for proj, rows in (("q_proj", 256), ("k_proj", 128), ("v_proj", 128)):
            tensors[f"model.layers.{i}.self_attn.{proj}.bias"] = np.zeros(rows, np.float32)
    write_safetensors(folder / "model.safetensors", tensors)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "qwen2",
                                                             "architectures": ["Qwen2ForCausalLM"]}))
    out = convert_folder(folder, tmp_path / "qwen2.gguf", out_type="F32")
    info = read_gguf_info(out)
    assert info.architecture == "qwen2" and info.tensor_count == 21 + 6
    np.testing.assert_allclose(logits(out, TOKENS), logits(tiny_gguf, TOKENS), rtol=1e-3, atol=1e-4)
