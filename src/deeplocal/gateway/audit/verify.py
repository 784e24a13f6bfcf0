"""Checking the chain: every edit, deletion or reordering of a record, and every forged truncation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeplocal.gateway.audit.chain import FORMAT_VERSION, GENESIS, canonical, chain_kind, link_hash
from deeplocal.gateway.audit.crypto import AuditKeys, body_commitment
from deeplocal.gateway.audit.segments import MARKER_NAME, META_NAME, iter_lines, read_json

MAX_ERRORS = 100
MARKER_FIELDS = ("v", "through_seq", "last_hash", "removed", "ts", "kid")


@dataclass(frozen=True, slots=True)
class VerifyError:
    reason: str
    segment: str = ""
    line: int = 0
    seq: int | None = None

    def __str__(self) -> str:
        where = f"{self.segment}:{self.line}" if self.segment else "log"
        return f"{where}: {self.reason}" + (f" (seq {self.seq})" if self.seq is not None else "")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str = GENESIS             # hash of the last record: anchor it elsewhere to catch tail cuts
    chain: str = ""
    erased_bodies: int = 0
    truncated_through: int | None = None
    errors: tuple[VerifyError, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "head": self.head, "chain": self.chain,
                "erased_bodies": self.erased_bodies, "truncated_through": self.truncated_through,
                "errors": [{"reason": e.reason, "segment": e.segment, "line": e.line, "seq": e.seq}
                           for e in self.errors]}


def marker_signature(marker: dict[str, Any], keys: AuditKeys) -> str:
    return keys.sign(b"truncation " + canonical({k: marker.get(k) for k in MARKER_FIELDS}))


def _check_meta(directory: Path, keys: AuditKeys | None, errors: list[VerifyError]) -> str:
    meta = read_json(directory / META_NAME)
    expected = chain_kind(keys)
    if meta is None:
        return expected
    kind = meta.get("chain")
    if kind != expected:
        reason = ("the log is keyed (hmac-sha256): give the audit key to verify it" if keys is None
                  else f"a key was given but the log says its chain is {kind!r}: rewritten without the key?")
        errors.append(VerifyError(reason))
    elif keys is not None and meta.get("kid") != keys.kid:
        errors.append(VerifyError(f"the log was written with key id {meta.get('kid')}, not {keys.kid}"))
    return str(kind or expected)


def _check_marker(directory: Path, keys: AuditKeys | None,
                  errors: list[VerifyError]) -> tuple[int, str, int | None]:
    """(first expected seq, expected prev hash, truncated-through seq or None)."""
    marker = read_json(directory / MARKER_NAME)
    if marker is None:
        return 1, GENESIS, None
    if keys is None:
        errors.append(VerifyError("a truncation marker is present: the audit key is needed to check it"))
    elif marker.get("sig") != marker_signature(marker, keys):
        errors.append(VerifyError("the truncation marker's signature is wrong: forged truncation"))
    through = int(marker.get("through_seq", 0))
    return through + 1, str(marker.get("last_hash", GENESIS)), through


def verify_log(directory: Path, keys: AuditKeys | None, *, expect_head: str | None = None) -> VerifyResult:
    errors: list[VerifyError] = []
    kind = _check_meta(directory, keys, errors)
    expected_seq, expected_prev, truncated = _check_marker(directory, keys, errors)
    records = erased = 0
    first_seq = last_seq = None
    head = expected_prev
    seen_head = expect_head is None
    for line in iter_lines(directory):
        where = {"segment": line.segment.name, "line": line.lineno}
        entry = line.entry
        if entry is None or not isinstance(entry.get("seq"), int):
            errors.append(VerifyError("not a valid audit entry (edited or corrupted)", **where))
            continue
        seq = entry["seq"]
        if truncated is not None and seq <= truncated:
            # a retention run stopped between writing its marker and removing the records
            if seq == truncated and entry.get("h") != expected_prev:
                errors.append(VerifyError("record at the truncation point does not match the marker", **where,
                                          seq=seq))
            continue
        records += 1
        first_seq = seq if first_seq is None else first_seq
        last_seq = seq
        if seq != expected_seq:
            errors.append(VerifyError(f"sequence {seq} where {expected_seq} was expected: a record was "
                                      "deleted, inserted or moved", **where, seq=seq))
        if entry.get("prev") != expected_prev:
            errors.append(VerifyError("link to the previous record is broken: deleted or reordered records",
                                      **where, seq=seq))
        if entry.get("v") != FORMAT_VERSION or link_hash(entry, keys) != entry.get("h"):
            errors.append(VerifyError("hash mismatch: the record was edited", **where, seq=seq))
        body, commit = entry.get("body"), entry.get("bc")
        if body is not None and (commit is None or body_commitment(body) != commit):
            errors.append(VerifyError("the encrypted body does not match its commitment", **where, seq=seq))
        if body is None and commit is not None:
            if entry.get("erased"):
                erased += 1
            else:
                errors.append(VerifyError("a body is missing without an erasure mark", **where, seq=seq))
        expected_prev = str(entry.get("h"))
        expected_seq = seq + 1
        head = expected_prev
        seen_head = seen_head or head == expect_head
        if len(errors) >= MAX_ERRORS:
            break
    if not seen_head:
        errors.append(VerifyError("the expected head hash is not in the log: records were cut from its end"))
    return VerifyResult(ok=not errors, records=records, first_seq=first_seq, last_seq=last_seq, head=head,
                        chain=kind, erased_bodies=erased, truncated_through=truncated, errors=tuple(errors))
