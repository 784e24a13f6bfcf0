"""Hashing and copying with progress; disk-full turned into a typed error."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from deeplocal.models.errors import StoreFull

Progress = Callable[[int], None]  # called with the number of bytes just processed
CHUNK = 4 * 1024 * 1024
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_full(exc: OSError, where: Path) -> StoreFull:
    reason = {errno.EFBIG: "file size limit reached"}.get(exc.errno or 0, "no space left on device")
    # (a short write without errno is reported as no space: is_disk_full checked the free space)
    return StoreFull(f"{where}: {reason} while writing; the partial model was removed. "
                     "Free some space or point models_dir at a bigger disk.")


def is_disk_full(exc: OSError, where: Path) -> bool:
    """ENOSPC/EDQUOT/EFBIG, or a short write without errno (numpy's tofile) on a nearly full disk."""
    if exc.errno in DISK_FULL:
        return True
    if exc.errno is None and "written" in str(exc):
        return True
    try:
        stats = os.statvfs(Path(where).parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1024 * 1024


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def copy_hashed(src: Path, dst: Path, progress: Progress | None = None) -> tuple[int, str]:
    """Copy src to dst (fsync'd), returning (size, sha256). ENOSPC/EFBIG -> StoreFull."""
    digest = hashlib.sha256()
    size = 0
    try:
        with Path(src).open("rb") as fin, Path(dst).open("wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress:
                    progress(len(chunk))
            fout.flush()
            os.fsync(fout.fileno())
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise disk_full(exc, Path(dst)) from exc
        raise
    return size, digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """Write beside the target, fsync, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in DISK_FULL:
            raise disk_full(exc, path) from exc
        raise
