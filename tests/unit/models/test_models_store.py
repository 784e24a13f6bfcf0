from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deeplocal.errors import DeeplocalError
from deeplocal.models.errors import InvalidModelFile, ModelExists, ModelNotFound
from deeplocal.models.fileio import sha256_file
from deeplocal.models.importer import import_path
from deeplocal.models.safetensors_io import write_safetensors
from deeplocal.models.store import ModelStore


def visible(store_dir: Path) -> list[str]:
    return sorted(p.name for p in store_dir.iterdir() if not p.name.startswith(".")) if store_dir.exists() else []


def staged(store_dir: Path) -> list[Path]:
    return list((store_dir / ".staging").iterdir()) if (store_dir / ".staging").exists() else []


def test_import_gguf_copies_hashes_and_reads_metadata(tiny_gguf: Path, store_dir: Path) -> None:
    store = ModelStore(store_dir)
    manifest = import_path(store, tiny_gguf)
    assert manifest.id == "tiny-llama.f32"
    assert manifest.format == "gguf" and manifest.architecture == "llama"
    assert manifest.quantization == "F32" and manifest.context_length == 256
    assert manifest.parameters == 258 * 256 * 2 + 256 + 2 * (2 * 256 + 256 * 256 * 2 + 2 * 128 * 256 + 3 * 512 * 256)
    assert manifest.sha256 == sha256_file(tiny_gguf)
    assert manifest.license == "apache-2.0"
    path = store.path_of(manifest)
    assert path.parent == store_dir / manifest.id and path.read_bytes() == tiny_gguf.read_bytes()
    on_disk = json.loads((store_dir / manifest.id / "manifest.json").read_text())
    assert on_disk["sha256"] == manifest.sha256 and on_disk["created"]
    assert [m.id for m in store.list()] == [manifest.id]
    assert staged(store_dir) == []


def test_duplicate_id_refused_and_replace_works(tiny_gguf: Path, store_dir: Path) -> None:
    store = ModelStore(store_dir)
    import_path(store, tiny_gguf, model_id="a")
    with pytest.raises(ModelExists):
        import_path(store, tiny_gguf, model_id="a")
    assert import_path(store, tiny_gguf, model_id="a", replace=True).id == "a"
    assert visible(store_dir) == ["a"] and staged(store_dir) == []


def test_link_registers_in_place_and_rm_leaves_the_file(tiny_gguf: Path, store_dir: Path) -> None:
    store = ModelStore(store_dir)
    manifest = import_path(store, tiny_gguf, model_id="linked", link=True)
    assert store.path_of(manifest) == tiny_gguf.resolve()
    assert not any(p.suffix == ".gguf" for p in (store_dir / "linked").iterdir())
    store.remove("linked")
    assert tiny_gguf.exists() and visible(store_dir) == []
    with pytest.raises(ModelNotFound) as info:
        store.get("linked")
    assert isinstance(info.value, DeeplocalError) and info.value.status_code == 404


def test_truncated_gguf_is_refused_and_nothing_is_stored(tiny_gguf: Path, store_dir: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    with pytest.raises(InvalidModelFile, match="truncated"):
        import_path(ModelStore(store_dir), cut)
    assert visible(store_dir) == [] and staged(store_dir) == []


def test_not_a_gguf_and_missing_paths(tmp_path: Path, store_dir: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(InvalidModelFile, match="not a GGUF"):
        import_path(ModelStore(store_dir), junk)
    with pytest.raises(InvalidModelFile, match="no such file"):
        import_path(ModelStore(store_dir), tmp_path / "nope")


def test_folder_without_config_json(tmp_path: Path, store_dir: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    with pytest.raises(InvalidModelFile, match="no config.json"):
        import_path(ModelStore(store_dir), folder)
    assert visible(store_dir) == []


def test_hf_folder_import_reads_safetensors_headers(tmp_path: Path, store_dir: Path) -> None:
    folder = tmp_path / "Tiny-HF"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
                                                    "max_position_embeddings": 512}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"ignored")
    write_safetensors(folder / "model.safetensors",
                      {"a": np.ones((4, 8), np.float32), "b": np.ones(8, np.float32)}, bf16=("a",))
    manifest = import_path(ModelStore(store_dir), folder)
    assert manifest.id == "tiny-hf" and manifest.format == "safetensors"
    assert manifest.architecture == "qwen2" and manifest.parameters == 40
    assert manifest.quantization == "BF16" and manifest.context_length == 512
    assert sorted(f.name for f in manifest.files) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert ModelStore(store_dir).path_of(manifest) == store_dir / "tiny-hf"
    assert not (store_dir / "tiny-hf" / "pytorch_model.bin").exists()


def test_truncated_safetensors_refused(tmp_path: Path, store_dir: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    full = write_safetensors(tmp_path / "full.safetensors", {"a": np.ones((64, 64), np.float32)})
    (folder / "model.safetensors").write_bytes(full.read_bytes()[:1000])
    with pytest.raises(InvalidModelFile, match="truncated"):
        import_path(ModelStore(store_dir), folder)
    assert visible(store_dir) == [] and staged(store_dir) == []


def test_invalid_id_is_refused(tiny_gguf: Path, store_dir: Path) -> None:
    with pytest.raises(ValueError, match="invalid model id"):
        import_path(ModelStore(store_dir), tiny_gguf, model_id="../escape")


def test_remove_unknown(store_dir: Path) -> None:
    with pytest.raises(ModelNotFound):
        ModelStore(store_dir).remove("ghost")


def test_stale_staging_is_ignored_by_list(tiny_gguf: Path, store_dir: Path) -> None:
    store = ModelStore(store_dir)
    (store_dir / ".staging" / "crashed").mkdir(parents=True)
    shutil.copy(tiny_gguf, store_dir / ".staging" / "crashed" / "x.gguf")
    assert store.list() == []


def test_verify_detects_a_changed_file(tiny_gguf: Path, store_dir: Path) -> None:
    store = ModelStore(store_dir)
    manifest = import_path(store, tiny_gguf, model_id="tiny")
    assert store.verify("tiny") == []
    path = store.path_of(manifest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store.verify("tiny") == [f"{path.name}: sha256 differs from the manifest"]
    path.unlink()
    assert store.verify("tiny") == [f"{path.name}: missing"]
