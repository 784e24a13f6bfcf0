"""The gateway's deeplocal.yaml, as the operator and the Helm chart render it, boots a real `deeplocal serve`
with auth on: /health and /ready answer, a call without a key is refused, a key from `deeplocal keys
create` (run the way docs/deploy.md runs it in the pod) is accepted, and /metrics is on its own port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests/integration"))
sys.path.insert(0, str(ROOT / "tests/unit/deploy"))
from gotemplate_subset import merge_values, render_chart
from serverproc import start_server

from deeplocal.deploy.reconcile import reconcile

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def operator_config() -> dict:
    result = reconcile({"apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment", "metadata": {"name": "t"},
                        "spec": {"model": {"name": "smol", "source": "smollm2-135m"}, "engine": "llamacpp",
                                 "concurrency": 2, "maxContext": 1024}}, now="t")
    cm = next(m for m in result.manifests if m["kind"] == "ConfigMap")
    return yaml.safe_load(cm["data"]["deeplocal.yaml"])


def chart_config() -> dict:
    chart = ROOT / "deploy/helm/deeplocal"
    values = merge_values(yaml.safe_load((chart / "values.yaml").read_text()),
                          {"gateway": {"llamacpp": {"n_ctx": 2048, "max_num_seqs": 2}}})
    cm = next(d for d in render_chart(chart, values) if d["kind"] == "ConfigMap" and "deeplocal.yaml" in d["data"])
    return yaml.safe_load(cm["data"]["deeplocal.yaml"])


@pytest.mark.parametrize("make", [operator_config, chart_config], ids=["operator", "chart"])
def test_rendered_gateway_config_serves_with_auth(tmp_path, make):
    doc = make()
    assert doc["server"]["host"] == "0.0.0.0" and doc["gateway"]["auth"] is True
    # Test-machine adjustments only: loopback (127.0.0.1:0 from start_server), a free metrics port, a temp
    # data dir, one thread.
    metrics_port = free_port()
    doc["metrics"] |= {"host": "127.0.0.1", "port": metrics_port}
    doc["data_dir"] = str(tmp_path / "data")
    doc["engine"]["n_threads"] = 1
    config = tmp_path / "deeplocal.yaml"
    config.write_text(yaml.safe_dump(doc))
    srv = start_server(tmp_path, "--config", str(config), "--host", "127.0.0.1")
    try:
        assert httpx.get(srv.base_url + "/health", timeout=5).status_code == 200
        ready = httpx.get(srv.base_url + "/ready", timeout=5)
        assert ready.status_code == 200 and all(ready.json()["models"].values())
        assert httpx.get(srv.base_url + "/v1/models", timeout=5).status_code == 401
        created = subprocess.run([sys.executable, "-m", "deeplocal", "keys", "create", "--tenant", "ops",
                                  "--name", "admin", "--scopes", "admin,inference", "--json"],
                                 env={**os.environ, "DEEPLOCAL_CONFIG": str(config)}, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120, check=True)
        key = json.loads(created.stdout)["key"]
        models = httpx.get(srv.base_url + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == [doc["models"][0]["id"]]
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert metrics.status_code == 200 and "deeplocal_" in metrics.text
    finally:
        srv.stop()
