"""A small client for the Hugging Face hub HTTP protocol (huggingface.co or a mirror via HF_ENDPOINT).

Only what `pull` needs: the revision's file list with LFS sha256s, and resumable downloads (HTTP Range).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import quote

import httpx

from deeplocal.models.errors import HubError, ModelNotFound, VerificationFailed
from deeplocal.models.fileio import CHUNK, DISK_FULL, disk_full

DEFAULT_ENDPOINT = "https://huggingface.co"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
FileProgress = Callable[[str, int, "int | None"], None]  # (file name, bytes just received, file size)


@dataclass(frozen=True, slots=True)
class RepoSpec:
    repo: str
    revision: str = "main"

    @classmethod
    def parse(cls, text: str) -> RepoSpec:
        repo, _, revision = text.strip().partition("@")
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo):
            raise HubError(f"not a Hugging Face repo id: {text!r} (expected ORG/NAME[@REVISION])")
        return cls(repo=repo, revision=revision or "main")


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    size: int | None
    sha256: str | None  # LFS files: the content's sha256
    git_sha1: str | None  # small files: the git blob id


def endpoint_from_env() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def offline_from_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, remote: RemoteFile) -> str:
    """Check size and checksum; return the sha256. On mismatch delete the file and raise."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    problem = None
    if remote.size is not None and size != remote.size:
        problem = f"size {size} != {remote.size} published by the hub"
    elif remote.sha256 and sha256 != remote.sha256:
        problem = f"sha256 {sha256} != {remote.sha256} published by the hub"
    elif not remote.sha256 and remote.git_sha1 and git_blob_sha1(path) != remote.git_sha1:
        problem = f"git blob id != {remote.git_sha1} published by the hub"
    if problem:
        path.unlink(missing_ok=True)
        raise VerificationFailed(f"{remote.name}: verification failed ({problem}); "
                                 "the partial file was deleted, run the pull again")
    return sha256


class HubClient:
    def __init__(self, endpoint: str | None = None, *, token: str | None = None, timeout: float = 30.0,
                 retries: int = 3):
        self.endpoint = (endpoint or endpoint_from_env()).rstrip("/")
        token = token if token is not None else os.environ.get("HF_TOKEN")
        headers = {"user-agent": "deeplocal"} | ({"authorization": f"Bearer {token}"} if token else {})
        self.retries = retries
        self.http = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def repo_files(self, spec: RepoSpec) -> tuple[str, list[RemoteFile]]:
        """(commit sha, files) for the revision, with sizes and LFS sha256s."""
        url = f"{self.endpoint}/api/models/{spec.repo}/revision/{quote(spec.revision, safe='')}"
        try:
            response = self.http.get(url, params={"blobs": "true"})
        except httpx.HTTPError as exc:
            raise HubError(f"cannot reach the hub at {self.endpoint}: {exc}; offline? "
                           "set HF_HUB_OFFLINE=1 to use the local Hugging Face cache") from exc
        if response.status_code in (401, 403, 404):
            raise ModelNotFound(f"{spec.repo}@{spec.revision} not found on {self.endpoint} "
                                f"(HTTP {response.status_code}; gated or private repos need HF_TOKEN)")
        if response.status_code != 200:
            raise HubError(f"{self.endpoint}: HTTP {response.status_code} for {spec.repo}")
        info = response.json()
        files = []
        for sib in info.get("siblings", []):
            lfs = sib.get("lfs") or {}
            files.append(RemoteFile(name=sib["rfilename"], size=lfs.get("size", sib.get("size")),
                                    sha256=lfs.get("sha256") or lfs.get("oid"),
                                    git_sha1=None if lfs else sib.get("blobId")))
        return str(info.get("sha") or spec.revision), files

    def download(self, repo: str, commit: str, remote: RemoteFile, partial: Path,
                 progress: FileProgress | None = None) -> str:
        """Download into `partial`, resuming what is there; verify; return the sha256."""
        url = f"{self.endpoint}/{repo}/resolve/{quote(commit, safe='')}/{quote(remote.name)}"
        partial.parent.mkdir(parents=True, exist_ok=True)
        last_error: Exception | None = None
        for _ in range(self.retries + 1):
            try:
                self._fetch(url, remote, partial, progress)
                return verify(partial, remote)
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                last_error = exc  # the connection dropped: resume from what we have
        raise HubError(f"{remote.name}: download interrupted ({last_error}); "
                       f"{partial.stat().st_size if partial.exists() else 0} bytes kept, "
                       "run the same pull again to resume")

    def _fetch(self, url: str, remote: RemoteFile, partial: Path, progress: FileProgress | None) -> None:
        have = partial.stat().st_size if partial.exists() else 0
        if remote.size is not None and have == remote.size:
            return
        if remote.size is not None and have > remote.size:
            partial.unlink()
            have = 0
        headers = {"range": f"bytes={have}-"} if have else {}
        with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code == 416:  # nothing left to send for that range
                return
            if response.status_code not in (200, 206):
                raise HubError(f"{remote.name}: HTTP {response.status_code} from {url}")
            mode = "ab" if response.status_code == 206 else "wb"
            if progress and have and mode == "ab":
                progress(remote.name, have, remote.size)
            try:
                with partial.open(mode) as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        if progress:
                            progress(remote.name, len(chunk), remote.size)
            except OSError as exc:
                if exc.errno in DISK_FULL:
                    partial.unlink(missing_ok=True)
                    raise disk_full(exc, partial) from exc
                raise

