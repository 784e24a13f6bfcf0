"""`pull` against a real HTTP server on 127.0.0.1 that speaks the hub protocol (with Range)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from models_fakehub import FakeHub, FakeRepo

from deeplocal.models.errors import HubError, ModelNotFound, VerificationFailed
from deeplocal.models.hub import RepoSpec
from deeplocal.models.pull import pull
from deeplocal.models.safetensors_io import write_safetensors
from deeplocal.models.store import ModelStore


@pytest.fixture
def hub():
    with FakeHub() as server:
        yield server


def partials(store_dir: Path) -> list[Path]:
    return [p for p in (store_dir / ".downloads").rglob("*") if p.is_file()] if store_dir.exists() else []


def test_pull_gguf_verifies_and_stores(hub: FakeHub, tiny_gguf: Path, tmp_path: Path) -> None:
    data = tiny_gguf.read_bytes()
    hub.state.repos["org/tiny-GGUF"] = FakeRepo(files={"tiny.Q8_0.gguf": data, "README.md": b"hi"},
                                                lfs={"tiny.Q8_0.gguf"})
    store = ModelStore(tmp_path / "models")
    manifest = pull(store, RepoSpec.parse("org/tiny-GGUF@main"), endpoint=hub.url, offline=False)
    assert manifest.id == "tiny.q8_0" and manifest.revision == "a" * 40
    assert manifest.source == "hf:org/tiny-GGUF@main"
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert store.path_of(manifest).read_bytes() == data
    assert partials(store.root) == []


def test_interrupted_download_resumes_with_range(hub: FakeHub, tiny_gguf: Path, tmp_path: Path) -> None:
    data = tiny_gguf.read_bytes()
    hub.state.repos["org/tiny"] = FakeRepo(files={"m.gguf": data}, lfs={"m.gguf"})
    hub.state.drop_after["m.gguf"] = 1_000_000  # the first response dies after 1 MB
    store = ModelStore(tmp_path / "models")
    manifest = pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False)
    ranges = [r for p, r in hub.state.requests if p.endswith("/m.gguf")]
    assert ranges == [None, "bytes=1000000-"]
    assert store.path_of(manifest).read_bytes() == data


def test_partial_from_an_earlier_run_is_resumed(hub: FakeHub, tiny_gguf: Path, tmp_path: Path) -> None:
    data = tiny_gguf.read_bytes()
    hub.state.repos["org/tiny"] = FakeRepo(files={"m.gguf": data}, lfs={"m.gguf"})
    store = ModelStore(tmp_path / "models")
    partial = store.downloads_dir() / f"org-tiny@{'a' * 40}" / "m.gguf.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:3_000_000])
    pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False)
    assert [r for p, r in hub.state.requests if p.endswith("/m.gguf")] == ["bytes=3000000-"]


def test_wrong_sha256_deletes_the_partial_and_says_so(hub: FakeHub, tiny_gguf: Path, tmp_path: Path) -> None:
    hub.state.repos["org/tiny"] = FakeRepo(files={"m.gguf": tiny_gguf.read_bytes()}, lfs={"m.gguf"},
                                           published_sha256={"m.gguf": "0" * 64})
    store = ModelStore(tmp_path / "models")
    with pytest.raises(VerificationFailed, match="partial file was deleted"):
        pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False)
    assert partials(store.root) == [] and store.list() == []


def test_pull_hf_folder_checks_git_blob_ids(hub: FakeHub, tmp_path: Path) -> None:
    weights = write_safetensors(tmp_path / "w.safetensors", {"x": np.ones((8, 8), np.float32)}).read_bytes()
    config = json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}).encode()
    hub.state.repos["org/Tiny-Llama"] = FakeRepo(
        files={"config.json": config, "model.safetensors": weights, "original/consolidated.pth": b"no",
               "pytorch_model.bin": b"no"}, lfs={"model.safetensors"})
    store = ModelStore(tmp_path / "models")
    manifest = pull(store, RepoSpec.parse("org/Tiny-Llama"), endpoint=hub.url, offline=False)
    assert manifest.id == "tiny-llama" and manifest.format == "safetensors" and manifest.parameters == 64
    assert sorted(f.name for f in manifest.files) == ["config.json", "model.safetensors"]


def test_several_ggufs_need_include(hub: FakeHub, tiny_gguf: Path, tmp_path: Path) -> None:
    data = tiny_gguf.read_bytes()
    hub.state.repos["org/x"] = FakeRepo(files={"x.Q4_K_M.gguf": data, "x.Q8_0.gguf": data},
                                        lfs={"x.Q4_K_M.gguf", "x.Q8_0.gguf"})
    store = ModelStore(tmp_path / "models")
    with pytest.raises(HubError, match="--include"):
        pull(store, RepoSpec.parse("org/x"), endpoint=hub.url, offline=False)
    manifest = pull(store, RepoSpec.parse("org/x"), include=("*Q4_K_M.gguf",), endpoint=hub.url, offline=False)
    assert manifest.id == "x.q4_k_m"


def test_unknown_repo_is_not_found(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found"):
        pull(ModelStore(tmp_path / "m"), RepoSpec.parse("org/none"), endpoint=hub.url, offline=False)


def test_offline_resolves_from_hf_cache(tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--org--tiny"
    commit = "b" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    blob = repo / "blobs" / hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    blob.write_bytes(tiny_gguf.read_bytes())
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "m.gguf").symlink_to(blob)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = ModelStore(tmp_path / "models")
    manifest = pull(store, RepoSpec.parse("org/tiny"))
    assert manifest.revision == commit and store.path_of(manifest).read_bytes() == tiny_gguf.read_bytes()
    with pytest.raises(ModelNotFound, match="not in the local Hugging Face cache"):
        pull(store, RepoSpec.parse("org/absent"))


def test_unreachable_hub_suggests_offline(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        pull(ModelStore(tmp_path / "m"), RepoSpec.parse("org/x"), endpoint="http://127.0.0.1:9", offline=False)


def test_cli_pull_uses_hf_endpoint(hub: FakeHub, tiny_gguf: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deeplocal.cli.models import app

    hub.state.repos["org/tiny"] = FakeRepo(files={"m.gguf": tiny_gguf.read_bytes()}, lfs={"m.gguf"})
    result = CliRunner().invoke(app, ["pull", "org/tiny", "--models-dir", str(tmp_path / "models"), "--json"],
                                env={"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["revision"] == "a" * 40
    result = CliRunner().invoke(app, ["pull", "org/gone", "--models-dir", str(tmp_path / "models")],
                                env={"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"})
    assert result.exit_code == 1 and "org/gone@main not found" in result.output


def test_pull_again_is_a_no_op_and_a_new_revision_needs_replace(hub: FakeHub, tiny_gguf: Path,
                                                                  tmp_path: Path) -> None:
    from deeplocal.models.errors import ModelExists

    hub.state.repos["org/tiny"] = FakeRepo(files={"m.gguf": tiny_gguf.read_bytes()}, lfs={"m.gguf"})
    store = ModelStore(tmp_path / "models")
    first = pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False)
    downloads = len([p for p, _ in hub.state.requests if "/resolve/" in p])
    assert pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False) == first
    assert len([p for p, _ in hub.state.requests if "/resolve/" in p]) == downloads
    hub.state.repos["org/tiny"].commit = "c" * 40
    with pytest.raises(ModelExists, match="--replace"):
        pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False)
    updated = pull(store, RepoSpec.parse("org/tiny"), endpoint=hub.url, offline=False, replace=True)
    assert updated.revision == "c" * 40 and [m.id for m in store.list()] == ["m"]
