"""The chain catches a tampered, a deleted and a reordered record, and forged truncations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KEY, edit_entry, make_record, segment_lines, write_lines

from deeplocal.gateway.audit import AuditKeyError, AuditLog
from deeplocal.gateway.audit.chain import link_hash
from deeplocal.gateway.audit.crypto import AuditKeys


def _verify(directory: Path, key: bytes | None):
    return AuditLog(directory, key=key).verify()


def test_untouched_log_verifies(filled: tuple[Path, bytes | None]) -> None:
    directory, key = filled
    result = _verify(directory, key)
    assert result.ok, result.errors
    assert (result.records, result.first_seq, result.last_seq) == (5, 1, 5)
    assert result.chain == ("hmac-sha256" if key else "sha256")


def test_tampered_record_is_caught(filled: tuple[Path, bytes | None]) -> None:
    directory, key = filled
    lines = segment_lines(directory)
    lines[2] = edit_entry(lines[2], status=500)
    write_lines(directory, lines)
    result = _verify(directory, key)
    assert not result.ok
    assert [(e.seq, e.reason.split(":")[0]) for e in result.errors] == [(3, "hash mismatch")]


def test_tampered_record_with_recomputed_hash_is_caught(filled: tuple[Path, bytes | None]) -> None:
    """An attacker recomputes the edited record's hash: without the key the HMAC is wrong; without
    a key at all the next record's link breaks."""
    directory, key = filled
    lines = segment_lines(directory)
    entry = json.loads(edit_entry(lines[2], prompt_tokens=1))
    entry["h"] = link_hash(entry, None)  # the attacker has no key
    lines[2] = json.dumps(entry, separators=(",", ":"))
    write_lines(directory, lines)
    result = _verify(directory, key)
    assert not result.ok
    seqs = {e.seq for e in result.errors}
    if key:
        assert 3 in seqs and any("hash mismatch" in e.reason for e in result.errors if e.seq == 3)
    else:
        assert seqs == {4}


def test_deleted_record_is_caught(filled: tuple[Path, bytes | None]) -> None:
    directory, key = filled
    lines = segment_lines(directory)
    del lines[2]
    write_lines(directory, lines)
    result = _verify(directory, key)
    assert not result.ok
    assert {e.seq for e in result.errors} == {4}
    assert any("deleted" in e.reason for e in result.errors)


def test_reordered_records_are_caught(filled: tuple[Path, bytes | None]) -> None:
    directory, key = filled
    lines = segment_lines(directory)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(directory, lines)
    result = _verify(directory, key)
    assert not result.ok
    assert {e.seq for e in result.errors} >= {2, 3}


def test_garbage_line_is_caught(filled: tuple[Path, bytes | None]) -> None:
    directory, key = filled
    lines = segment_lines(directory)
    lines.insert(1, "not json")
    write_lines(directory, lines)
    assert not _verify(directory, key).ok


def test_cut_tail_is_caught_with_an_anchored_head(filled: tuple[Path, bytes | None]) -> None:
    directory, key = filled
    head = _verify(directory, key).head
    write_lines(directory, segment_lines(directory)[:-2])
    assert _verify(directory, key).ok                      # a chain alone cannot see a cut tail
    assert not AuditLog(directory, key=key).verify(expect_head=head).ok


def test_keyed_log_needs_its_key_and_rejects_a_downgrade(tmp_path: Path) -> None:
    directory = tmp_path / "a"
    with AuditLog(directory, key=KEY) as log:
        log.append(make_record(1))
    assert not AuditLog(directory).verify().ok                       # no key: cannot check HMACs
    with pytest.raises(AuditKeyError):
        AuditLog(directory, key=bytes(32)).prepare()                 # a wrong key fails at startup
    assert not AuditLog(directory, key=bytes(32)).verify().ok        # another key
    # an attacker rewrites everything as an unkeyed chain: the key holder notices
    lines = segment_lines(directory)
    entry = json.loads(lines[0])
    entry["h"] = link_hash(entry, None)
    write_lines(directory, [json.dumps(entry)])
    (directory / "audit.meta.json").write_text(json.dumps({"version": 1, "chain": "sha256", "kid": None}))
    assert not AuditLog(directory, key=KEY).verify().ok


def test_hmac_chain_differs_per_key() -> None:
    entry = {"v": 1, "seq": 1, "prev": "0" * 64, "rec": {"a": 1}, "bc": None}
    a = link_hash(entry, AuditKeys.from_master(KEY))
    b = link_hash(entry, AuditKeys.from_master(bytes(32)))
    assert a != b and len(a) == 64
