"""`models pull ORG/NAME[@REVISION]`: from the hub (or a mirror), or offline from the local HF cache."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from pathlib import Path

from deeplocal.models.errors import HubError, ModelExists, ModelNotFound
from deeplocal.models.hub import (
    FileProgress,
    HubClient,
    RemoteFile,
    RepoSpec,
    endpoint_from_env,
    offline_from_env,
)
from deeplocal.models.importer import gguf_manifest, hf_manifest, import_gguf, import_hf_folder
from deeplocal.models.manifest import FileEntry, Manifest, check_id, slugify
from deeplocal.models.store import ModelStore

FOLDER_SUFFIXES = (".json", ".safetensors", ".model", ".txt", ".jinja", ".tiktoken")


def select_files(names: list[str], include: tuple[str, ...] = ()) -> list[str]:
    """Which files of a repo to fetch: the --include globs; else its only GGUF; else a HF folder."""
    if include:
        chosen = [n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in include)]
        if not chosen:
            raise ModelNotFound(f"no file matches {list(include)}; the repo has: {', '.join(names)}")
        return chosen
    ggufs = [n for n in names if n.endswith(".gguf")]
    if len(ggufs) == 1:
        return ggufs
    if ggufs and not any(n.endswith(".safetensors") for n in names):
        raise HubError("the repo has several GGUF files; pick one with --include, e.g. --include "
                       f"'*Q4_K_M.gguf'. Files: {', '.join(ggufs)}")
    chosen = [n for n in names if "/" not in n and n.endswith(FOLDER_SUFFIXES)]
    if "config.json" not in chosen:
        raise HubError("the repo has neither one GGUF file nor a config.json with safetensors weights")
    return chosen


def default_pull_id(spec: RepoSpec, files: list[str]) -> str:
    if len(files) == 1 and files[0].endswith(".gguf"):
        return slugify(Path(files[0]).stem)
    return slugify(spec.repo.split("/")[-1])


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    return xdg / "huggingface" / "hub"


def cached_snapshot(spec: RepoSpec, cache: Path | None = None) -> tuple[str, Path]:
    """(commit, snapshot folder) of a repo in the local HF cache; a clear error when it is not there."""
    cache = cache or hf_cache_dir()
    repo_dir = cache / f"models--{spec.repo.replace('/', '--')}"
    commit = spec.revision
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        ref = repo_dir / "refs" / spec.revision
        commit = ref.read_text().strip() if ref.is_file() else ""
    snapshot = repo_dir / "snapshots" / commit if commit else None
    if snapshot is None or not snapshot.is_dir():
        raise ModelNotFound(f"offline (HF_HUB_OFFLINE=1) and {spec.repo}@{spec.revision} is not in the "
                            f"local Hugging Face cache ({cache}). Pull it once online, or import a "
                            "local copy with `deeplocal models import PATH`.")
    return commit, snapshot


def pull_offline(store: ModelStore, spec: RepoSpec, *, include: tuple[str, ...] = (),
                 model_id: str | None = None, replace: bool = False) -> Manifest:
    commit, snapshot = cached_snapshot(spec)
    names = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
    files = select_files(names, include)
    model_id = check_id(model_id or default_pull_id(spec, files))
    source = f"hf:{spec.repo}@{spec.revision}"
    if len(files) == 1 and files[0].endswith(".gguf"):
        return import_gguf(store, snapshot / files[0], model_id=model_id, source=source, revision=commit,
                           replace=replace)
    return import_hf_folder(store, snapshot, model_id=model_id, source=source, revision=commit,
                            replace=replace)


def pull(store: ModelStore, spec: RepoSpec, *, include: tuple[str, ...] = (), model_id: str | None = None,
         replace: bool = False, endpoint: str | None = None, offline: bool | None = None,
         progress: FileProgress | None = None,
         on_plan: Callable[[list[RemoteFile]], None] | None = None) -> Manifest:
    """Fetch a repo revision into the store: resumable, sha256-verified, committed atomically."""
    if offline if offline is not None else offline_from_env():
        return pull_offline(store, spec, include=include, model_id=model_id, replace=replace)
    with HubClient(endpoint or endpoint_from_env()) as hub:
        commit, remote = hub.repo_files(spec)
        by_name = {f.name: f for f in remote}
        names = select_files(sorted(by_name), include)
        model_id = check_id(model_id or default_pull_id(spec, names))
        if store.has(model_id) and not replace:
            existing = store.get(model_id)
            if existing.revision == commit:
                return existing  # already there at this commit: nothing to do
            raise ModelExists(f"{model_id!r} is in the store at revision {existing.revision}; pass "
                              f"--replace to update it to {commit}, or --id for a second copy")
        wanted: list[RemoteFile] = [by_name[n] for n in names]
        if on_plan:
            on_plan(wanted)
        partial_dir = store.downloads_dir() / f"{slugify(spec.repo)}@{commit}"
        digests = {f.name: hub.download(spec.repo, commit, f, partial_dir / f"{f.name}.incomplete",
                                        progress) for f in wanted}
    return _commit_download(store, partial_dir, wanted, digests, model_id=model_id,
                            source=f"hf:{spec.repo}@{spec.revision}", commit=commit, replace=replace)


def _commit_download(store: ModelStore, partial_dir: Path, wanted: list[RemoteFile], digests: dict[str, str],
                     *, model_id: str, source: str, commit: str, replace: bool) -> Manifest:
    with store.staging() as staged:
        entries = []
        for f in wanted:
            target = staged / Path(f.name).name
            os.rename(partial_dir / f"{f.name}.incomplete", target)
            entries.append(FileEntry(name=target.name, size=target.stat().st_size, sha256=digests[f.name]))
        if len(wanted) == 1 and wanted[0].name.endswith(".gguf"):
            manifest = gguf_manifest(staged / entries[0].name, model_id=model_id, source=source,
                                     sha256=entries[0].sha256, revision=commit)
        else:
            manifest = hf_manifest(staged, tuple(entries), model_id=model_id, source=source, revision=commit)
        result = store.commit(staged, manifest, replace=replace)
    _remove_empty(partial_dir)
    return result


def _remove_empty(folder: Path) -> None:
    """Drop the (now empty) partial-download folders of a finished pull."""
    for path in [*sorted(folder.rglob("*"), reverse=True), folder]:
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
