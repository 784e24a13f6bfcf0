"""`deeplocal audit verify|export|prune|erase|keygen`: output, --json and exit codes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from conftest import KEY, make_record, segment_lines, write_lines
from typer.testing import CliRunner

from deeplocal.cli.audit import app, parse_since
from deeplocal.gateway.audit import AuditLog

runner = CliRunner()


@pytest.fixture
def keyed_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEEPLOCAL_AUDIT_KEY", base64.b64encode(KEY).decode())
    now = time.time()
    with AuditLog(tmp_path / "audit", key=KEY, store_bodies=True, fsync="never") as log:
        for i, age_days in enumerate([40, 20, 1], 1):
            log.append(make_record(i, ts=now - age_days * 86400, prompt=f"prompt {i}",
                                   subject="alice" if i != 2 else "bob"))
    return tmp_path / "audit"


def test_verify_ok_and_failed(keyed_log: Path) -> None:
    ok = runner.invoke(app, ["verify", "--dir", str(keyed_log), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["records"] == 3
    lines = segment_lines(keyed_log)
    del lines[1]
    write_lines(keyed_log, lines)
    bad = runner.invoke(app, ["verify", "--dir", str(keyed_log)])
    assert bad.exit_code == 1
    assert "FAILED" in bad.stdout


def test_verify_errors_exit_2(tmp_path: Path, no_env_key: None) -> None:
    missing = runner.invoke(app, ["verify", "--dir", str(tmp_path / "nope"), "--json"])
    assert missing.exit_code == 2 and json.loads(missing.stdout)["ok"] is False
    (tmp_path / "k").write_text("garbage")
    badkey = runner.invoke(app, ["verify", "--dir", str(tmp_path), "--key-file", str(tmp_path / "k")])
    assert badkey.exit_code == 2


def test_export_since_and_bodies(keyed_log: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["export", "--dir", str(keyed_log), "--since", "30d"])
    assert res.exit_code == 0
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["request_id"] for r in rows] == ["req-2", "req-3"] and "prompt" not in rows[0]
    out = tmp_path / "x.json"
    res = runner.invoke(app, ["export", "--dir", str(keyed_log), "--bodies", "--json", "--out", str(out)])
    assert res.exit_code == 0
    assert [r["prompt"] for r in json.loads(out.read_text())] == ["prompt 1", "prompt 2", "prompt 3"]


def test_prune_and_erase(keyed_log: Path) -> None:
    res = runner.invoke(app, ["prune", "--dir", str(keyed_log), "--days", "30", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["removed"] == 1
    res = runner.invoke(app, ["erase", "alice", "--dir", str(keyed_log), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["erased_bodies"] == 1
    res = runner.invoke(app, ["verify", "--dir", str(keyed_log), "--json"])
    body = json.loads(res.stdout)
    assert res.exit_code == 0 and body["truncated_through"] == 1 and body["erased_bodies"] == 1


def test_prune_without_key_exits_2(tmp_path: Path, no_env_key: None) -> None:
    with AuditLog(tmp_path / "a") as log:
        log.append(make_record(1, ts=1.0))
    res = runner.invoke(app, ["prune", "--dir", str(tmp_path / "a"), "--days", "1", "--yes"])
    assert res.exit_code == 2 and "key" in res.output


def test_keygen_and_help() -> None:
    res = runner.invoke(app, ["keygen"])
    assert res.exit_code == 0 and len(base64.b64decode(res.stdout.strip())) == 32
    for cmd in ("verify", "export", "prune", "erase"):
        assert runner.invoke(app, [cmd, "--help"]).exit_code == 0


def test_parse_since() -> None:
    assert parse_since("2d", now=1000000.0) == 1000000.0 - 2 * 86400
    assert parse_since("2026-11-01") == 1793491200.0
    assert parse_since("1700000000") == 1700000000.0
