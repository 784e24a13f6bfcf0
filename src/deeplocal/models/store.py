"""The local model store: one folder per model, `<models_dir>/<id>/manifest.json` plus its files.

Every write goes to a staging folder inside the store and is renamed into place only when complete,
so a crash, a failed check or a full disk never leaves a half-written model behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deeplocal.models.errors import ModelExists, ModelNotFound
from deeplocal.models.fileio import DISK_FULL, Progress, disk_full, sha256_file, write_text_atomic
from deeplocal.models.manifest import MANIFEST_NAME, Manifest, check_id, dump_manifest, read_manifest

STAGING = ".staging"
DOWNLOADS = ".downloads"


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root).expanduser()

    # -- reading -----------------------------------------------------------------------------
    def model_dir(self, model_id: str) -> Path:
        return self.root / check_id(model_id)

    def has(self, model_id: str) -> bool:
        try:
            return (self.model_dir(model_id) / MANIFEST_NAME).is_file()
        except ValueError:
            return False

    def get(self, model_id: str) -> Manifest:
        if not self.has(model_id):
            raise ModelNotFound(f"no model {model_id!r} in the store at {self.root}; "
                                "see `deeplocal models list`", param="model")
        return read_manifest(self.model_dir(model_id) / MANIFEST_NAME)

    def list(self) -> list[Manifest]:
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(self.root.iterdir()):
            manifest_path = entry / MANIFEST_NAME
            if not entry.name.startswith(".") and manifest_path.is_file():
                out.append(read_manifest(manifest_path))
        return out

    def path_of(self, manifest: Manifest) -> Path:
        return manifest.model_path(self.model_dir(manifest.id))

    # -- writing -----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder on the store's filesystem; removed on exit unless committed."""
        folder = self.root / STAGING / uuid.uuid4().hex
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise disk_full(exc, folder) from exc
            raise
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit(self, staged: Path, manifest: Manifest, *, replace: bool = False) -> Manifest:
        """Write the manifest into `staged` and rename the folder to `<root>/<id>` in one step."""
        write_text_atomic(staged / MANIFEST_NAME, dump_manifest(manifest))
        target = self.model_dir(manifest.id)
        with self._locked():
            if target.exists():
                if not replace:
                    raise ModelExists(f"a model {manifest.id!r} is already in the store; "
                                      "pass --id to pick another id, or --replace")
                trash = self.root / STAGING / f"old-{uuid.uuid4().hex}"
                os.rename(target, trash)
                os.rename(staged, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(staged, target)
        return manifest

    def register(self, manifest: Manifest, *, replace: bool = False) -> Manifest:
        """Add a manifest-only entry (a model registered in place through `external_path`)."""
        with self.staging() as staged:
            return self.commit(staged, manifest, replace=replace)

    def remove(self, model_id: str) -> Manifest:
        """Delete the model's folder. Files registered in place (external_path) are never touched."""
        manifest = self.get(model_id)
        with self._locked():
            trash = self.root / STAGING / f"rm-{uuid.uuid4().hex}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.model_dir(model_id), trash)
        shutil.rmtree(trash, ignore_errors=True)
        return manifest

    def verify(self, model_id: str, progress: Progress | None = None) -> list[str]:
        """Re-hash the model's files against its manifest; return the problems (empty when intact)."""
        manifest = self.get(model_id)
        base = Path(manifest.external_path) if manifest.external_path else self.model_dir(model_id)
        problems = []
        for entry in manifest.files:
            path = base if base.is_file() else base / entry.name
            if not path.is_file():
                problems.append(f"{entry.name}: missing")
            elif path.stat().st_size != entry.size:
                problems.append(f"{entry.name}: size {path.stat().st_size} != {entry.size}")
            elif entry.sha256 and sha256_file(path, progress) != entry.sha256:
                problems.append(f"{entry.name}: sha256 differs from the manifest")
        return problems

    def downloads_dir(self) -> Path:
        """Where pulls keep their resumable partial files."""
        folder = self.root / DOWNLOADS
        folder.mkdir(parents=True, exist_ok=True)
        return folder
