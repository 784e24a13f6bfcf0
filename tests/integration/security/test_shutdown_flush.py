"""SIGTERM drains: settlements and audit records still queued in the background writers reach the
ledger and the audit log before the server exits (their flush intervals are set far beyond the test)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from serverproc import start_server

pytestmark = pytest.mark.slow


@pytest.fixture
def cloud():
    proc = subprocess.Popen([sys.executable, str(HERE.parent / "routing" / "fake_upstream.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(proc.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def _text(r: httpx.Response) -> str:
    """The answer's text, whole or assembled from the stream's deltas (chunk boundaries vary)."""
    if not r.text.startswith("data:"):
        return r.json()["choices"][0]["message"]["content"]
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data: {")]
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


def test_sigterm_writes_every_queued_settlement_and_audit_record(tmp_path, cloud):
    (tmp_path / "deeplocal.yaml").write_text(f"""
gateway: {{settle_flush_s: 5}}
audit: {{batch_s: 5}}
routing:
  upstreams:
    cloud: {{kind: remote, base_url: {cloud}/v1, api_key_env: FAKE_CLOUD_KEY, may_receive: [public]}}
  aliases:
    fast: [{{upstream: cloud, model: fake}}]
""")
    env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(tmp_path / "data"), "FAKE_CLOUD_KEY": "k"}
    key = json.loads(subprocess.run([sys.executable, "-m", "deeplocal", "keys", "create", "--json", "--tenant",
                                     "acme", "--name", "app", "--rpm", "1000"], env=env, cwd=tmp_path,
                                    capture_output=True, text=True, check=True).stdout)["key"]
    srv = start_server(tmp_path, "--auth", env={"FAKE_CLOUD_KEY": "k"})
    headers = {"authorization": f"Bearer {key}", "x-data-class": "public"}
    n = 12
    with httpx.Client(base_url=srv.base_url, headers=headers, timeout=30) as client:
        for i in range(n):
            body = {"model": "fast", "stream": i % 2 == 0, "messages": [{"role": "user", "content": f"hi {i}"}]}
            r = client.post("/v1/chat/completions", json=body)
            assert r.status_code == 200 and "echo: hi" in _text(r)
    assert srv.stop() == 0
    db = sqlite3.connect(tmp_path / "data" / "deeplocal.db")
    rows = db.execute("SELECT status, upstream, request_id FROM usage_ledger").fetchall()
    leases = db.execute("SELECT count(*) FROM stream_leases").fetchone()[0]
    db.close()
    assert [r[:2] for r in rows] == [("200", "cloud")] * n and leases == 0
    assert len({r[2] for r in rows}) == n and all(r[2] for r in rows)   # each row names its request
    verify = subprocess.run([sys.executable, "-m", "deeplocal", "audit", "verify", "--json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["records"] == n
