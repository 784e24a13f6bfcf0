"""Put a model into the store: a GGUF file or a Hugging Face folder, copied and hashed, or registered in place."""

from __future__ import annotations

import hashlib
from pathlib import Path

from deeplocal.models.errors import InvalidModelFile
from deeplocal.models.fileio import Progress, copy_hashed, sha256_file
from deeplocal.models.gguf_meta import is_gguf, read_gguf_info
from deeplocal.models.hf_meta import files_to_keep, read_hf_folder
from deeplocal.models.manifest import FileEntry, Manifest, check_id, slugify, utc_now
from deeplocal.models.store import ModelStore


def folder_digest(files: tuple[FileEntry, ...]) -> str:
    """One sha256 for a folder: over the sorted 'name sha256' lines of its files."""
    lines = "".join(f"{f.name} {f.sha256}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def gguf_manifest(path: Path, *, model_id: str, source: str, sha256: str, revision: str | None = None,
                  license: str | None = None, parent: str | None = None,
                  external: bool = False) -> Manifest:
    info = read_gguf_info(path)
    return Manifest(
        id=model_id, source=source, revision=revision, format="gguf", architecture=info.architecture,
        parameters=info.parameters, size_bytes=info.size_bytes, quantization=info.quantization,
        sha256=sha256, license=license or info.license, created=utc_now(), name=info.name,
        context_length=info.context_length, primary=path.name,
        files=(FileEntry(name=path.name, size=info.size_bytes, sha256=sha256),),
        external_path=str(path.resolve()) if external else None, parent=parent,
    )


def hf_manifest(folder: Path, files: tuple[FileEntry, ...], *, model_id: str, source: str,
                revision: str | None = None, license: str | None = None,
                parent: str | None = None, external: bool = False) -> Manifest:
    info = read_hf_folder(folder)
    return Manifest(
        id=model_id, source=source, revision=revision, format="safetensors",
        architecture=info.architecture, parameters=info.parameters,
        size_bytes=sum(f.size for f in files), quantization=info.quantization,
        sha256=folder_digest(files), license=license, created=utc_now(),
        name=info.hf_architecture, context_length=info.context_length, primary=".", files=files,
        external_path=str(folder.resolve()) if external else None, parent=parent,
    )


def default_id(path: Path) -> str:
    return slugify(path.stem if path.is_file() else path.name)


def import_gguf(store: ModelStore, path: Path, *, model_id: str | None = None, link: bool = False,
                source: str | None = None, revision: str | None = None, license: str | None = None,
                replace: bool = False, progress: Progress | None = None) -> Manifest:
    path = Path(path).expanduser()
    read_gguf_info(path)  # refuse a broken file before copying gigabytes
    model_id = check_id(model_id or default_id(path))
    source = source or str(path.resolve())
    if link:
        digest = sha256_file(path, progress)
        return store.register(gguf_manifest(path, model_id=model_id, source=source, sha256=digest,
                                            revision=revision, license=license, external=True),
                              replace=replace)
    with store.staging() as staged:
        target = staged / path.name
        _, digest = copy_hashed(path, target, progress)
        manifest = gguf_manifest(target, model_id=model_id, source=source, sha256=digest,
                                 revision=revision, license=license)
        return store.commit(staged, manifest, replace=replace)


def import_hf_folder(store: ModelStore, folder: Path, *, model_id: str | None = None,
                     link: bool = False, source: str | None = None, revision: str | None = None,
                     license: str | None = None, replace: bool = False,
                     progress: Progress | None = None) -> Manifest:
    folder = Path(folder).expanduser()
    read_hf_folder(folder)  # config.json, weights present and not truncated
    model_id = check_id(model_id or default_id(folder))
    source = source or str(folder.resolve())
    keep = files_to_keep(folder)
    if link:
        entries = tuple(FileEntry(name=p.name, size=p.stat().st_size, sha256=sha256_file(p, progress))
                        for p in keep)
        return store.register(hf_manifest(folder, entries, model_id=model_id, source=source,
                                          revision=revision, license=license, external=True),
                              replace=replace)
    with store.staging() as staged:
        entries = []
        for item in keep:
            size, digest = copy_hashed(item, staged / item.name, progress)
            entries.append(FileEntry(name=item.name, size=size, sha256=digest))
        manifest = hf_manifest(staged, tuple(entries), model_id=model_id, source=source,
                               revision=revision, license=license)
        return store.commit(staged, manifest, replace=replace)


def import_path(store: ModelStore, path: Path, **kwargs) -> Manifest:
    """Import a GGUF file or a Hugging Face model folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        return import_hf_folder(store, path, **kwargs)
    if path.is_file():
        if not is_gguf(path):
            raise InvalidModelFile(f"{path}: not a GGUF file; import a .gguf file or a Hugging Face folder")
        return import_gguf(store, path, **kwargs)
    raise InvalidModelFile(f"{path}: no such file or folder")
