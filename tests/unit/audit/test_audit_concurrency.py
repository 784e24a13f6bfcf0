"""Two processes append to one log at once (file lock); segments roll; a torn last line is repaired."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import KEY, make_record

from deeplocal.gateway.audit import AuditLog

SRC = Path(__file__).resolve().parents[3] / "src"
WRITER = textwrap.dedent("""
    import sys, time
    from deeplocal.gateway.audit import AuditLog, AuditRecord
    directory, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    log = AuditLog(directory, key=bytes(range(32)), fsync="never", segment_max_bytes=16384)
    while time.time() < go:
        time.sleep(0.001)
    for i in range(n):
        log.append(AuditRecord(request_id=f"{name}-{i}", principal=name, model="m"))
    log.close()
""")


def test_two_processes_append_to_one_log(tmp_path: Path) -> None:
    import time

    directory = tmp_path / "audit"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    go = time.time() + 1.5  # both start appending at the same moment
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(directory), name, "300", str(go)], env=env)
             for name in ("p1", "p2")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    log = AuditLog(directory, key=KEY)
    result = log.verify()
    assert result.ok, result.errors[:3]
    assert (result.records, result.first_seq, result.last_seq) == (600, 1, 600)
    rows = log.export()
    assert {r["principal"] for r in rows} == {"p1", "p2"}
    assert [r["request_id"] for r in rows if r["principal"] == "p1"] == [f"p1-{i}" for i in range(300)]
    assert len(list(directory.glob("audit-*.jsonl"))) > 2           # segments rolled under contention


def test_two_log_objects_in_one_process_interleave(tmp_path: Path) -> None:
    a = AuditLog(tmp_path / "audit", fsync="never")
    b = AuditLog(tmp_path / "audit", fsync="never")
    for i in range(10):
        (a if i % 2 else b).append(make_record(i))
    result = a.verify()
    assert result.ok and result.records == 10


def test_torn_last_line_is_cut_and_appends_go_on(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit", fsync="never") as log:
        log.append(make_record(1))
    with (tmp_path / "audit" / "audit-000001.jsonl").open("a") as fh:
        fh.write('{"v":1,"seq":2,"prev":"ab')                       # crash in the middle of a write
    with AuditLog(tmp_path / "audit", fsync="always") as log:
        assert log.append(make_record(2)) == 2
        assert log.verify().ok
