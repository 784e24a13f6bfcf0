"""The audit directory on disk: append-only JSONL segments, a meta file, a lock, atomic rewrites."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEGMENT_RE = re.compile(r"^audit-(\d{6,})\.jsonl$")
META_NAME = "audit.meta.json"
MARKER_NAME = "truncation.json"
LOCK_NAME = ".lock"


@dataclass(frozen=True, slots=True)
class Line:
    segment: Path
    lineno: int                    # 1-based
    entry: dict[str, Any] | None   # None: not parseable JSON
    raw: str


def segment_name(index: int) -> str:
    return f"audit-{index:06d}.jsonl"


def segment_index(path: Path) -> int:
    m = SEGMENT_RE.match(path.name)
    if m is None:
        raise ValueError(f"not an audit segment: {path.name}")
    return int(m.group(1))


def list_segments(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [directory / n for n in os.listdir(directory) if SEGMENT_RE.match(n)]
    return sorted(found, key=segment_index)


def read_lines(segment: Path) -> Iterator[Line]:
    with segment.open("r", encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip("\n")
            if not raw:
                continue
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                entry = None
            yield Line(segment, lineno, entry if isinstance(entry, dict) else None, raw)


def iter_lines(directory: Path) -> Iterator[Line]:
    for segment in list_segments(directory):
        yield from read_lines(segment)


def last_entry(segment: Path) -> dict[str, Any] | None:
    """The last entry of a segment, reading only its tail. A torn last line (a crash mid-write) is
    cut off so that appends go on; it was never acknowledged."""
    with segment.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        chunk = 1 << 16
        while size:
            start = max(0, size - chunk)
            fh.seek(start)
            data = fh.read(size - start)
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n")
                if cut < 0 and start > 0:
                    chunk *= 2
                    continue
                size = start + cut + 1
                fh.truncate(size)
                continue
            body = data[:-1]
            nl = body.rfind(b"\n")
            if nl < 0 and start > 0:
                chunk *= 2
                continue
            entry = json.loads(body[nl + 1:])
            if not isinstance(entry, dict):
                raise TypeError(f"{segment.name}: the last line is not an audit entry")
            return entry
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def file_lock(fd: int) -> Iterator[None]:
    """An exclusive advisory lock shared by every process that appends to or rewrites the log."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
