"""Records appended in batches (one lock, one write) chain exactly like single appends; the privacy
guard's background writer loses nothing at close."""

from __future__ import annotations

from pathlib import Path

from conftest import KEY, make_record

from deeplocal.engine.types import Usage
from deeplocal.gateway.audit import AuditLog
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.privacy import PrivacyGuard


def test_a_batch_gets_consecutive_seqs_rolls_segments_and_verifies(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit", key=KEY, fsync="never", segment_max_bytes=4096) as log:
        assert log.append(make_record(0)) == 1
        seqs = log.append_many([make_record(i, prompt=f"p{i}") for i in range(1, 40)])
        assert seqs == list(range(2, 41))
        assert log.append(make_record(41)) == 41
        result = log.verify()
    assert result.ok and result.records == 41
    assert len(list((tmp_path / "audit").glob("audit-*.jsonl"))) > 1   # rolled inside the batch


async def test_privacy_guard_writes_queued_records_at_close(tmp_path: Path) -> None:
    audit = AuditSettings(dir=tmp_path / "audit", batch_s=5.0)   # nothing would be written for 5 s
    guard = PrivacyGuard(PiiSettings(), audit, data_dir=tmp_path)
    for i in range(25):
        await guard.record(request_id=f"r{i}", principal=None, model="m", upstream="local",
                           usage=Usage(3, 4), status="200", data_class="public", finding_types=(),
                           started=0.0, subject=None, prompt=None, completion=None)
    guard.close()
    with AuditLog(tmp_path / "audit") as log:
        result = log.verify()
    assert result.ok and result.records == 25


async def test_fsync_always_waits_until_the_record_is_written(tmp_path: Path) -> None:
    guard = PrivacyGuard(PiiSettings(), AuditSettings(dir=tmp_path / "audit", fsync="always", batch_s=5.0),
                         data_dir=tmp_path)
    try:
        await guard.record(request_id="r1", principal=None, model="m", upstream="local", usage=Usage(1, 1),
                           status="200", data_class="public", finding_types=(), started=0.0, subject=None,
                           prompt=None, completion=None)
        assert (tmp_path / "audit" / "audit-000001.jsonl").read_text().count("\n") == 1
    finally:
        guard.close()
