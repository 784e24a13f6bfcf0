"""PII policy, data classes, pseudonymized cloud calls and the audit chain inside the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from serverproc import start_server

MODEL = "smollm2-135m-instruct"
CN_ID = "11010519491231002X"        # the textbook valid GB 11643 example
EMAIL = "zhang.san@example.com"


@pytest.fixture(scope="module")
def cloud():
    proc = subprocess.Popen([sys.executable, str(HERE.parent / "routing" / "fake_upstream.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(proc.stdout.readline().split()[1])
    root = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(root + "/_control/log")
            break
        except httpx.TransportError:
            import time

            time.sleep(0.05)
    yield root
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory, cloud):
    tmp = tmp_path_factory.mktemp("privacy")
    (tmp / "deeplocal.yaml").write_text(f"""
pii:
  policy: {{CN_ID: block}}
  restricted_on_findings: false
routing:
  upstreams:
    local: {{kind: local, engine: {MODEL}}}
    cloud:
      kind: remote
      base_url: {cloud}/v1
      api_key_env: FAKE_CLOUD_KEY
      may_receive: [public, internal]
      price: {{input_per_mtok: 2000, output_per_mtok: 8000}}
  aliases:
    cloud-chat: [{{upstream: cloud, model: fake}}]
    hybrid: [local, {{upstream: cloud, model: fake}}]
""")
    srv = start_server(tmp, env={"FAKE_CLOUD_KEY": "test-key"})
    yield srv, tmp
    srv.stop()


def _post(srv, model, text, **headers):
    return httpx.post(srv.base_url + "/v1/chat/completions", timeout=60, headers=headers,
                      json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": text}]})


def _cloud_log(cloud):
    return httpx.get(cloud + "/_control/log").json()["requests"]


def test_blocked_entity_is_refused(server):
    srv, _ = server
    r = _post(srv, MODEL, f"My ID number is {CN_ID}, please remember it.")
    assert r.status_code == 400 and r.json()["error"]["code"] == "pii_blocked"
    assert CN_ID not in r.text


def test_restricted_never_leaves(server, cloud):
    srv, _ = server
    httpx.post(cloud + "/_control/reset")
    r = _post(srv, "cloud-chat", "Summarise our quarterly plan.", **{"X-Data-Class": "restricted"})
    assert r.status_code == 503 and "restricted" in r.json()["error"]["message"]
    assert _cloud_log(cloud) == []
    local = _post(srv, "hybrid", "Summarise our quarterly plan.", **{"X-Data-Class": "restricted"})
    assert local.status_code == 200 and local.headers["x-deeplocal-upstream"] == "local"
    assert _cloud_log(cloud) == []


def test_internal_goes_out_pseudonymized_and_comes_back(server, cloud):
    srv, _ = server
    httpx.post(cloud + "/_control/reset")
    r = _post(srv, "cloud-chat", f"Write to {EMAIL} about the meeting.", **{"X-Data-Class": "internal"})
    assert r.status_code == 200, r.text
    assert r.headers["x-deeplocal-upstream"] == "cloud"
    sent = json.dumps(_cloud_log(cloud))
    assert EMAIL not in sent and "<EMAIL_ADDRESS_1>" in sent
    assert EMAIL in r.json()["choices"][0]["message"]["content"]   # the fake echoes; we restore


def test_bad_data_class_header(server):
    srv, _ = server
    r = _post(srv, MODEL, "hello", **{"X-Data-Class": "secret"})
    assert r.status_code == 400


def test_audit_chain_verifies_and_catches_tampering(server):
    srv, tmp = server
    assert _post(srv, MODEL, "hello").status_code == 200
    env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(tmp / "data")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "deeplocal", "audit", *a], env=env,
                                    capture_output=True, text=True, cwd=tmp, check=False)
    ok = run("verify", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["records"] >= 4
    segments = sorted((tmp / "data" / "audit").glob("*.jsonl*"))
    text = segments[0].read_text()
    assert EMAIL not in text and CN_ID not in text and "hello" not in text   # bodies are off
    segments[0].write_text(text.replace('"prompt_tokens":', '"prompt_tokens":1', 1))
    bad = run("verify", "--json")
    assert bad.returncode == 1


def _spend(srv, upstream: str) -> float:
    text = httpx.get(srv.base_url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("deeplocal_estimated_spend_usd_total{") and f'upstream="{upstream}"' in line)


def test_spend_of_a_cloud_call_is_counted_at_its_prices(server):
    srv, _ = server
    before = _spend(srv, "cloud")
    r = _post(srv, "cloud-chat", "What is the capital of France?", **{"X-Data-Class": "public"})
    assert r.status_code == 200 and r.headers["x-deeplocal-upstream"] == "cloud"
    usage = r.json()["usage"]
    expected = (usage["prompt_tokens"] * 2000 + usage["completion_tokens"] * 8000) / 1e6
    assert expected > 0 and _spend(srv, "cloud") - before == pytest.approx(expected)
    local = _post(srv, "hybrid", "Say hi.", **{"X-Data-Class": "public"})
    assert local.headers["x-deeplocal-upstream"] == "local" and _spend(srv, "local") == 0
