"""`deeplocal deploy` commands, through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from deeplocal.cli.deploy import app

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_render_prints_valid_manifests(k8s_validate):
    result = runner.invoke(app, ["render", "-f", str(ROOT / "deploy/operator/example-llmdeployment.yaml")])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "NetworkPolicy"}
    for d in docs:
        k8s_validate(d)
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert "gateway:\n  auth: true" in cm["data"]["deeplocal.yaml"]


def test_render_rejects_a_bad_spec_with_reasons(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment",
                                   "metadata": {"name": "x"},
                                   "spec": {"model": {"name": "m", "source": "org/m"}, "engine": "vllm"}}))
    result = runner.invoke(app, ["render", "-f", str(bad)])
    assert result.exit_code == 2
    assert "spec.gpus is required" in result.output


def test_crd_command_matches_the_shipped_file():
    result = runner.invoke(app, ["crd", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0] == yaml.safe_load((ROOT / "deploy/operator/crd.yaml").read_text())


def test_docker_print_mounts_what_the_config_names(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    cfg = tmp_path / "deeplocal.yaml"
    cfg.write_text(yaml.safe_dump({"server": {"port": 9000}, "gateway": {"auth": True},
                                   "models": [{"source": str(model), "id": "m"}]}))
    result = runner.invoke(app, ["docker", "--print", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    argv = json.loads(result.stdout)
    assert argv[:2] == ["docker", "run"] and "--read-only" in argv
    assert "127.0.0.1:9000:9000" in argv                       # published on loopback only
    assert f"{model}:{model}:ro" in argv
    assert f"{cfg.resolve()}:/etc/deeplocal/deeplocal.yaml:ro" in argv
    assert argv[-4:] == ["--host", "0.0.0.0", "--port", "9000"]
    assert "DEEPLOCAL_AUDIT_KEY" in argv and not any("DEEPLOCAL_AUDIT_KEY=" in a for a in argv)


def test_docker_print_gpu_uses_the_cuda_image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEEPLOCAL_CONFIG", raising=False)
    result = runner.invoke(app, ["docker", "--print", "--gpu"])
    assert result.exit_code == 0
    assert "--gpus all" in result.stdout and "-cuda" in result.stdout
