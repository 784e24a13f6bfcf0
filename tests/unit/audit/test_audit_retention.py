"""Retention leaves a signed truncation marker; erasure drops bodies and keeps the chain valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KEY, make_record, segment_lines

from deeplocal.gateway.audit import AuditKeyError, AuditLog

DAY = 86400.0
NOW = 1_800_000_000.0


def _log_with_ages(directory: Path, ages_days: list[float], **kw) -> AuditLog:
    log = AuditLog(directory, key=KEY, fsync="never", **kw)
    for i, age in enumerate(ages_days, 1):
        log.append(make_record(i, ts=NOW - age * DAY, subject="alice" if i % 2 else "bob",
                               prompt=f"secret prompt {i} 身份证11010519491231002X"))
    return log


def test_retention_verifies_and_a_forged_marker_is_caught(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [40, 35, 31, 10, 2], store_bodies=True)
    result = log.apply_retention(30, now=NOW)
    assert (result.removed, result.through_seq) == (3, 3)
    v = log.verify()
    assert v.ok, v.errors
    assert v.truncated_through == 3 and v.first_seq == 4
    assert [r["request_id"] for r in log.export()][:2] == ["req-4", "req-5"]

    marker_path = tmp_path / "a" / "truncation.json"
    marker = json.loads(marker_path.read_text())
    marker["through_seq"] = 4                       # claim one more record was pruned
    marker_path.write_text(json.dumps(marker))
    assert not log.verify().ok


def test_deleting_old_records_without_a_marker_is_caught(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [40, 35, 2])
    lines = segment_lines(tmp_path / "a")
    (tmp_path / "a" / "audit-000001.jsonl").write_text("\n".join(lines[2:]) + "\n")
    assert not log.verify().ok


def test_forged_marker_without_the_key_is_caught(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [40, 35, 2])
    lines = segment_lines(tmp_path / "a")
    second = json.loads(lines[1])
    (tmp_path / "a" / "audit-000001.jsonl").write_text(lines[2] + "\n")
    forged = {"v": 1, "through_seq": 2, "last_hash": second["h"], "removed": 2, "ts": NOW, "kid": log.keys.kid,
              "sig": "0" * 64}
    (tmp_path / "a" / "truncation.json").write_text(json.dumps(forged))
    result = log.verify()
    assert not result.ok and any("forged" in e.reason for e in result.errors)


def test_retention_of_everything_then_appends_continue_the_chain(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [40, 35])
    assert log.apply_retention(1, now=NOW).removed == 2
    log.append(make_record(9, ts=NOW))
    result = log.verify()
    assert result.ok, result.errors
    assert result.first_seq == 3 and result.truncated_through == 2


def test_retention_needs_the_key(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a", fsync="never")
    log.append(make_record(1, ts=NOW - 40 * DAY))
    with pytest.raises(AuditKeyError):
        log.apply_retention(30, now=NOW)


def test_erasure_removes_bodies_and_keeps_the_chain(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [5, 4, 3, 2], store_bodies=True)
    raw = (tmp_path / "a" / "audit-000001.jsonl").read_text()
    assert "secret prompt" not in raw and "11010519491231002X" not in raw      # encrypted at rest
    before = {r["request_id"]: r for r in log.export(bodies=True)}
    assert before["req-1"]["prompt"].startswith("secret prompt 1")

    assert log.erase_subject("alice") == 2
    result = log.verify()
    assert result.ok, result.errors
    assert result.erased_bodies == 2
    after = {r["request_id"]: r for r in log.export(bodies=True)}
    assert after["req-1"]["body"] == "erased" and "prompt" not in after["req-1"]
    assert after["req-2"]["prompt"] == before["req-2"]["prompt"]               # bob's bodies stay
    events = [r["event"] for r in log.export()]
    assert events[-1] == "audit.erase"                                         # the erasure is on record


def test_body_removed_without_erasure_mark_is_caught(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [2], store_bodies=True)
    path = tmp_path / "a" / "audit-000001.jsonl"
    entry = json.loads(path.read_text())
    entry["body"] = None
    path.write_text(json.dumps(entry) + "\n")
    assert not log.verify().ok


def test_swapped_ciphertext_is_caught(tmp_path: Path) -> None:
    log = _log_with_ages(tmp_path / "a", [3, 2], store_bodies=True)
    path = tmp_path / "a" / "audit-000001.jsonl"
    a, b = (json.loads(x) for x in path.read_text().splitlines())
    a["body"], b["body"] = b["body"], a["body"]
    path.write_text(json.dumps(a) + "\n" + json.dumps(b) + "\n")
    assert not log.verify().ok
