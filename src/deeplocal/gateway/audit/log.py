"""`AuditLog`: append hash-chained records to segment files, safely from several processes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from deeplocal.errors import DeeplocalError
from deeplocal.gateway.audit import maintenance
from deeplocal.gateway.audit.chain import FORMAT_VERSION, GENESIS, chain_kind, link_hash
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.audit.crypto import AuditKeyError, AuditKeys, body_commitment, load_key
from deeplocal.gateway.audit.records import AuditRecord
from deeplocal.gateway.audit.segments import (
    LOCK_NAME,
    MARKER_NAME,
    META_NAME,
    file_lock,
    last_entry,
    list_segments,
    read_json,
    segment_index,
    segment_name,
    write_atomic,
)
from deeplocal.gateway.audit.verify import VerifyResult, verify_log


class AuditError(DeeplocalError):
    code = "audit_error"


@dataclass(slots=True)
class _Tail:
    segment: Path
    ino: int
    size: int
    seq: int
    hash: str


class AuditLog:
    """One audit directory. Thread-safe; processes sharing the directory serialise on a file lock.

    `key` (32 bytes) keys the chain (HMAC), encrypts bodies and signs truncation markers. Bodies
    are stored only with `store_bodies=True`, which requires a key.
    """

    def __init__(self, directory: Path | str, *, key: bytes | None = None, store_bodies: bool = False,
                 fsync: str = "interval", fsync_interval_s: float = 1.0,
                 segment_max_bytes: int = 64 * 1024 * 1024) -> None:
        if store_bodies and key is None:
            raise AuditKeyError("storing prompt and completion bodies needs an audit key "
                                "(DEEPLOCAL_AUDIT_KEY or audit.key_file)")
        if fsync not in ("always", "interval", "never"):
            raise ValueError("fsync must be always, interval or never")
        self.dir = Path(directory).expanduser()
        self.keys = AuditKeys.from_master(key) if key is not None else None
        self.store_bodies = store_bodies
        self._fsync = fsync
        self._fsync_interval = fsync_interval_s
        self._max_bytes = segment_max_bytes
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._tail: _Tail | None = None
        self._last_sync = 0.0

    @classmethod
    def from_settings(cls, settings: AuditSettings, *, data_dir: Path) -> AuditLog:
        return cls(settings.dir or data_dir / "audit", key=load_key(settings.key_file),
                   store_bodies=settings.store_bodies, fsync=settings.fsync,
                   fsync_interval_s=settings.fsync_interval_s, segment_max_bytes=settings.segment_max_bytes)

    def __repr__(self) -> str:
        return f"AuditLog({str(self.dir)!r}, chain={chain_kind(self.keys)}, store_bodies={self.store_bodies})"

    def prepare(self) -> None:
        """Create the directory and its meta file; AuditKeyError if the key does not match the log.
        Call once at startup so that a wrong key fails the start, not a request."""
        with self._mutex, file_lock(self._lock()):
            self._ensure_meta()

    # -- append -------------------------------------------------------------------------------

    def append(self, record: AuditRecord) -> int:
        """Append one record; returns its sequence number."""
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[AuditRecord]) -> list[int]:
        """Append records in order under one lock and (mostly) one write; returns their sequence numbers."""
        entries = [self._entry(record) for record in records]   # encryption outside the lock
        with self._mutex, file_lock(self._lock()):
            return self._append_locked(entries)

    def _entry(self, record: AuditRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {"v": FORMAT_VERSION, "seq": 0, "prev": GENESIS, "rec": record.metadata(),
                                 "bc": None, "body": None}
        if self.store_bodies and record.has_body and self.keys is not None:
            plaintext = json.dumps(record.bodies(), ensure_ascii=False).encode()
            body = self.keys.encrypt(plaintext, aad=record.request_id.encode())
            entry["body"], entry["bc"] = body, body_commitment(body)
        return entry

    def _append_locked(self, entries: list[dict[str, Any]]) -> list[int]:
        tail = self._current_tail()
        seqs: list[int] = []
        pending = bytearray()
        for entry in entries:
            if tail.size + len(pending) >= self._max_bytes:
                if pending:
                    self._write(tail, bytes(pending))
                    pending.clear()
                self._tail = tail = self._read_tail()  # another writer may have rolled already
                if tail.size >= self._max_bytes:
                    tail = self._roll(tail)
            entry["seq"], entry["prev"] = tail.seq + 1, tail.hash
            entry["h"] = link_hash(entry, self.keys)
            pending += (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            tail.seq, tail.hash = entry["seq"], entry["h"]
            seqs.append(tail.seq)
        if pending:
            self._write(tail, bytes(pending))
        return seqs

    def _write(self, tail: _Tail, data: bytes) -> None:
        fd = self._segment_fd(tail.segment)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        now = time.monotonic()
        if self._fsync == "always" or (self._fsync == "interval" and now - self._last_sync >= self._fsync_interval):
            os.fsync(fd)
            self._last_sync = now
        tail.size += len(data)

    def _current_tail(self) -> _Tail:
        """The last seq and hash; re-read from disk only when another writer changed the segment."""
        tail = self._tail
        if tail is not None:
            try:
                st = os.stat(tail.segment)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino == tail.ino and st.st_size == tail.size:
                return tail
        self._tail = tail = self._read_tail()
        return tail

    def _read_tail(self) -> _Tail:
        self._ensure_meta()
        segments = list_segments(self.dir)
        for segment in reversed(segments):
            entry = last_entry(segment)
            if entry is not None:
                return self._tail_of(segments[-1], int(entry["seq"]), str(entry["h"]))
        marker = read_json(self.dir / MARKER_NAME)
        seq, h = (int(marker["through_seq"]), str(marker["last_hash"])) if marker else (0, GENESIS)
        return self._tail_of(segments[-1] if segments else self.dir / segment_name(1), seq, h)

    def _tail_of(self, segment: Path, seq: int, h: str) -> _Tail:
        fd = self._segment_fd(segment)
        st = os.fstat(fd)
        return _Tail(segment, st.st_ino, st.st_size, seq, h)

    def _roll(self, tail: _Tail) -> _Tail:
        nxt = self.dir / segment_name(segment_index(tail.segment) + 1)
        if self._fd is not None:
            os.fsync(self._fd)
        self._tail = self._tail_of(nxt, tail.seq, tail.hash)
        return self._tail

    def _segment_fd(self, segment: Path) -> int:
        if self._fd is not None and self._tail is not None and self._tail.segment == segment:
            try:
                if os.fstat(self._fd).st_ino == os.stat(segment).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(segment, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def _lock(self) -> int:
        if self._lock_fd is None:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        return self._lock_fd

    def _ensure_meta(self) -> None:
        path = self.dir / META_NAME
        meta = read_json(path)
        kind = chain_kind(self.keys)
        if meta is None:
            data = {"version": FORMAT_VERSION, "chain": kind, "kid": self.keys.kid if self.keys else None}
            write_atomic(path, json.dumps(data).encode())
        elif meta.get("chain") != kind or (self.keys is not None and meta.get("kid") != self.keys.kid):
            raise AuditKeyError(f"{self.dir} was written with chain {meta.get('chain')} and key id "
                                f"{meta.get('kid')}; this process has {kind} and key id "
                                f"{self.keys.kid if self.keys else None}")

    def close(self) -> None:
        with self._mutex:
            for fd in (self._fd, self._lock_fd):
                if fd is not None:
                    if fd == self._fd:
                        os.fsync(fd)
                    os.close(fd)
            self._fd = self._lock_fd = None
            self._tail = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading and maintenance ------------------------------------------------------------------

    def verify(self, *, expect_head: str | None = None) -> VerifyResult:
        return verify_log(self.dir, self.keys, expect_head=expect_head)

    def export(self, since: datetime | float | None = None, *, bodies: bool = False) -> list[dict[str, Any]]:
        return maintenance.export(self.dir, self.keys, since=since, bodies=bodies)

    def apply_retention(self, days: float, *, now: float | None = None) -> maintenance.RetentionResult:
        with self._mutex, file_lock(self._lock()):
            result = maintenance.apply_retention(self.dir, self.keys, days=days, now=now)
            self._tail = None
            if result.removed:
                self._append_event("audit.retention", {"removed": result.removed})
            return result

    def erase_subject(self, subject_id: str) -> int:
        """Remove the encrypted bodies of one data subject; the chain stays verifiable."""
        with self._mutex, file_lock(self._lock()):
            erased = maintenance.erase_subject(self.dir, subject_id)
            self._tail = None
            self._append_event("audit.erase", {"erased_bodies": erased})
            return erased

    def _append_event(self, event: str, detail: dict[str, Any]) -> None:
        rec = AuditRecord(request_id=f"{event}-{time.time_ns()}", principal="deeplocal-admin", event=event,
                          detail=json.dumps(detail, sort_keys=True))
        self._append_locked([self._entry(rec)])
