"""A full disk during pull, convert and quantize: a typed error and nothing half-written in the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from models_fakehub import FakeHub, FakeRepo

from deeplocal.models.convert import convert_model
from deeplocal.models.errors import StoreFull
from deeplocal.models.hub import RepoSpec
from deeplocal.models.importer import import_path
from deeplocal.models.pull import pull
from deeplocal.models.quantize import quantize_model
from deeplocal.models.store import ModelStore


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            check=False, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def everything_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".lock")


def test_pull_onto_a_full_disk(tiny_gguf: Path, tiny_disk: Path) -> None:
    store = ModelStore(tiny_disk / "models")
    with FakeHub() as hub:
        hub.state.repos["org/tiny"] = FakeRepo(files={"m.gguf": tiny_gguf.read_bytes()}, lfs={"m.gguf"})
        with pytest.raises(StoreFull, match="no space left"):
            pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False)
    assert store.list() == [] and everything_under(store.root) == []


def test_quantize_onto_a_full_disk(tiny_gguf: Path, tiny_disk: Path) -> None:
    store = ModelStore(tiny_disk / "models")
    import_path(store, tiny_gguf, model_id="tiny", link=True)  # the 5 MB source stays outside
    with pytest.raises(StoreFull):
        quantize_model(store, "tiny", "Q8_0")  # 1.4 MB output into 1 MB
    assert [m.id for m in store.list()] == ["tiny"]
    assert everything_under(store.root) == ["tiny/manifest.json"]


def test_convert_onto_a_full_disk(tiny_gguf: Path, tiny_disk: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "models"))
    from test_models_convert import export_hf

    store = ModelStore(tiny_disk / "models")
    folder = export_hf(tiny_gguf, tmp_path / "hf")
    import_path(store, folder, model_id="tiny-hf", link=True)
    with pytest.raises(StoreFull, match="no space left"):
        convert_model(store, "tiny-hf", out_type="F32")
    assert [m.id for m in store.list()] == ["tiny-hf"]
    assert everything_under(store.root) == ["tiny-hf/manifest.json"]
