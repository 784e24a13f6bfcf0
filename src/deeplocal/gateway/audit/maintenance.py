"""Export, retention with a signed truncation marker, and erasure of one data subject's bodies.

Retention and erasure rewrite segments; the caller (`AuditLog`) holds the log's file lock.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deeplocal.gateway.audit.crypto import AuditKeyError, AuditKeys
from deeplocal.gateway.audit.segments import (
    MARKER_NAME,
    iter_lines,
    list_segments,
    read_json,
    read_lines,
    write_atomic,
)
from deeplocal.gateway.audit.verify import marker_signature


@dataclass(frozen=True, slots=True)
class RetentionResult:
    removed: int
    through_seq: int | None
    segments_deleted: int


def _timestamp(since: datetime | float | None) -> float:
    if since is None:
        return float("-inf")
    return since.timestamp() if isinstance(since, datetime) else float(since)


def export(directory: Path, keys: AuditKeys | None, *, since: datetime | float | None = None,
           bodies: bool = False) -> list[dict[str, Any]]:
    """Records at or after `since`, as dicts (metadata, seq, hash; decrypted bodies if asked)."""
    if bodies and keys is None:
        raise AuditKeyError("exporting bodies needs the audit key")
    cutoff = _timestamp(since)
    out = []
    for line in iter_lines(directory):
        entry = line.entry
        if entry is None or entry.get("rec", {}).get("ts", 0) < cutoff:
            continue
        row = {"seq": entry["seq"], "hash": entry["h"], **entry["rec"]}
        if entry.get("erased"):
            row["body"] = "erased"
        elif bodies and entry.get("body") is not None and keys is not None:
            plain = keys.decrypt(entry["body"], aad=entry["rec"]["request_id"].encode())
            row.update(json.loads(plain))
        out.append(row)
    return out


def apply_retention(directory: Path, keys: AuditKeys | None, *, days: float,
                    now: float | None = None) -> RetentionResult:
    """Remove the oldest records, those older than `days`, and sign what was cut.

    The removed prefix ends at the first record that is young enough (records are in time order up
    to clock skew between writers). The signed marker is written before anything is deleted, so a
    crash in between leaves a log that still verifies.
    """
    if keys is None:
        raise AuditKeyError("retention needs the audit key: the truncation marker must be signed")
    cutoff = (time.time() if now is None else now) - days * 86400.0
    through = last_hash = None
    removed = 0
    doomed: list[Path] = []
    partial: tuple[Path, list[str]] | None = None
    segments = list_segments(directory)
    for segment in segments:
        lines = list(read_lines(segment))
        keep_from = next((i for i, ln in enumerate(lines)
                          if ln.entry is None or ln.entry["rec"]["ts"] >= cutoff), None)
        cut = lines if keep_from is None else lines[:keep_from]
        if cut:
            through, last_hash = cut[-1].entry["seq"], cut[-1].entry["h"]
            removed += len(cut)
        if keep_from is None:
            doomed.append(segment)
            continue
        if keep_from:
            partial = (segment, [ln.raw for ln in lines[keep_from:]])
        break
    if through is None:
        return RetentionResult(0, None, 0)
    old = read_json(directory / MARKER_NAME) or {}
    marker = {"v": 1, "through_seq": through, "last_hash": last_hash,
              "removed": removed + int(old.get("removed", 0)), "ts": round(time.time(), 6), "kid": keys.kid}
    marker["sig"] = marker_signature(marker, keys)
    write_atomic(directory / MARKER_NAME, json.dumps(marker).encode())
    if partial is not None:
        segment, rest = partial
        write_atomic(segment, ("\n".join(rest) + "\n").encode())
    everything = len(doomed) == len(segments)
    for segment in doomed[:-1] if everything else doomed:
        segment.unlink()
    if everything:  # keep the newest segment, empty, so that numbering goes on
        write_atomic(doomed[-1], b"")
    return RetentionResult(removed, through, len(doomed) - (1 if everything else 0))


def erase_subject(directory: Path, subject_id: str) -> int:
    """Drop the encrypted bodies of `subject_id`'s records. Their commitments stay in the chain."""
    erased = 0
    for segment in list_segments(directory):
        lines = list(read_lines(segment))
        changed = False
        out = []
        for ln in lines:
            entry = ln.entry
            if entry is not None and entry.get("body") is not None and entry["rec"].get("subject") == subject_id:
                entry = {**entry, "body": None, "erased": True}
                out.append(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
                erased += 1
                changed = True
            else:
                out.append(ln.raw)
        if changed:
            write_atomic(segment, ("\n".join(out) + "\n").encode())
    return erased
