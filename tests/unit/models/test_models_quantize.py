from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGUFReader

from deeplocal.models.errors import ModelError
from deeplocal.models.evaluate import EvalConfig, evaluate_file
from deeplocal.models.gguf_meta import read_gguf_info
from deeplocal.models.importer import import_path
from deeplocal.models.quantize import load_imatrix, quantize_file, quantize_model
from deeplocal.models.store import ModelStore


@pytest.mark.parametrize("qtype", ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"])
def test_each_type_is_written_by_llama_cpp(tiny_gguf: Path, tmp_path: Path, qtype: str) -> None:
    out = tmp_path / f"{qtype}.gguf"
    quantize_file(tiny_gguf, out, qtype)
    info = read_gguf_info(out)
    assert info.quantization == qtype
    assert info.size_bytes < tiny_gguf.stat().st_size / 2.5  # F32 -> at most ~8.5 bits per weight
    assert info.parameters == read_gguf_info(tiny_gguf).parameters


def test_quantize_into_the_store_and_refuse_double_quantizing(tiny_gguf: Path, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    import_path(store, tiny_gguf, model_id="tiny-f32")
    q8 = quantize_model(store, "tiny-f32", "q8_0")
    assert q8.id == "tiny-q8_0" and q8.parent == "tiny-f32" and q8.quantization == "Q8_0"
    assert q8.source == "quantize:tiny-f32:Q8_0" and len(q8.sha256) == 64
    with pytest.raises(ModelError, match="already Q8_0"):
        quantize_model(store, "tiny-q8_0", "Q4_K_M")
    with pytest.raises(ModelError, match="unknown quantization type"):
        quantize_model(store, "tiny-f32", "Q3_XYZ")
    assert sorted(m.id for m in store.list()) == ["tiny-f32", "tiny-q8_0"]
    assert not list((store.root / ".staging").iterdir())


def write_imatrix(model: Path, out: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(out), "imatrix")
    for t in GGUFReader(model).tensors:
        if len(t.shape) == 2 and t.name != "token_embd.weight":
            writer.add_tensor(f"{t.name}.in_sum2", (rng.random(int(t.shape[0])) * 100).astype(np.float32))
            writer.add_tensor(f"{t.name}.counts", np.array([10.0], np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def test_importance_matrix_changes_the_quantization(tiny_gguf: Path, tmp_path: Path) -> None:
    imatrix = load_imatrix(write_imatrix(tiny_gguf, tmp_path / "imatrix.gguf"))
    assert len(imatrix) == 15 and all(v.dtype == np.float32 for v in imatrix.values())
    plain, weighted = tmp_path / "plain.gguf", tmp_path / "weighted.gguf"
    quantize_file(tiny_gguf, plain, "Q4_K_M")
    quantize_file(tiny_gguf, weighted, "Q4_K_M", imatrix=imatrix)
    assert plain.stat().st_size == weighted.stat().st_size
    assert plain.read_bytes() != weighted.read_bytes()


def test_eval_on_the_tiny_model_measures_everything(tiny_gguf: Path, tmp_path: Path) -> None:
    q8 = tmp_path / "q8.gguf"
    quantize_file(tiny_gguf, q8, "Q8_0")
    config = EvalConfig(n_ctx=128, decode_tokens=8)
    base, quant = evaluate_file(tiny_gguf, model="f32", config=config), evaluate_file(q8, model="q8", config=config)
    for r in (base, quant):
        assert set(r.perplexity) == {"en", "zh"} and all(v > 1 for v in r.perplexity.values())
        assert r.accuracy_items == 24 and 0 <= r.accuracy <= 1
        assert r.prefill_tps > 0 and r.decode_tps > 0 and r.kv_bytes_per_token == 2 * 2 * 2 * 64 * 2
        assert r.ppl_tokens["en"] == len(tiny_bytes("heldout_en.txt")) - 64  # all but the first half window
    assert quant.file_bytes < base.file_bytes
    # a random model's perplexity is near its vocab size; Q8_0 barely moves it
    assert abs(quant.perplexity["en"] / base.perplexity["en"] - 1) < 0.01


def tiny_bytes(name: str) -> bytes:
    from deeplocal.models.evaluate import data_text

    text = data_text(name).encode()
    return text.replace(b"he", b"\0")  # "he" is one token in the tiny vocab
