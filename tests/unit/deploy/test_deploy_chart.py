"""The Helm chart renders valid Kubernetes objects for each values file in its ci/ folder.

No helm binary installs here, so `gotemplate_subset` renders the chart; the chart keeps to that subset
(an unsupported construct fails these tests). CI with helm can also run `helm lint` / `helm template`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gotemplate_subset import Fail, merge_values, render_chart

from deeplocal.deploy import gateway_config

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy/helm/deeplocal"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
CI = sorted((CHART / "ci").glob("*.yaml"))


def rendered(values_file: Path | None = None, **extra) -> list[dict]:
    top = yaml.safe_load(values_file.read_text()) or {} if values_file else {}
    return render_chart(CHART, merge_values(merge_values(VALUES, top), extra), release="llm", namespace="ai")


@pytest.mark.parametrize("values_file", CI, ids=lambda p: p.stem)
def test_chart_renders_valid_manifests(values_file, k8s_validate):
    docs = rendered(values_file)
    assert {d["kind"] for d in docs} >= {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    for d in docs:
        k8s_validate(d)
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "llm-config")
    gateway_config.check_sections(yaml.safe_load(cm["data"]["deeplocal.yaml"]))


def test_defaults_are_safe():
    docs = rendered()
    kinds = [d["kind"] for d in docs]
    assert "Ingress" not in kinds
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    cfg = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["deeplocal.yaml"])
    assert cfg["gateway"]["auth"] is True
    assert "NetworkPolicy" in kinds


def test_vllm_values_route_gateway_to_engines():
    docs = rendered(CHART / "ci/vllm-single-node-values.yaml")
    cfg = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["deeplocal.yaml"])
    assert cfg["routing"]["upstreams"]["engine"]["base_url"] == "http://llm-engine.ai.svc:8000/v1"
    assert cfg["routing"]["aliases"] == {"deepseek-r1-distill-qwen-7b": ["engine"]}
    engine = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "llm-engine")
    c = engine["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:3] == ["vllm", "serve", "/models/deepseek-r1-distill-qwen-7b"]
    assert c["command"][-1] == "--enable-prefix-caching"
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "1"}


@pytest.mark.parametrize("bad,needle", [
    ({"gateway": {"auth": False}}, "gateway.auth must be true"),
    ({"gateway": {"replicas": 3}}, "secrets.database"),
    ({"audit": {"storeBodies": True}}, "secrets.auditKey"),
    ({"autoscaling": {"enabled": True}}, "autoscaling the gateway"),
])
def test_unsafe_values_fail(bad, needle):
    with pytest.raises(Fail, match=needle):
        rendered(**bad)


def test_packaged_dashboard_and_alerts_match_observability_sources():
    assert (CHART / "files/deeplocal.json").read_bytes() == (ROOT / "deploy/grafana/deeplocal.json").read_bytes()
    assert (CHART / "files/alerts.yml").read_bytes() == (ROOT / "deploy/prometheus/alerts.yml").read_bytes(), \
        "copy deploy/prometheus/alerts.yml into deploy/helm/deeplocal/files/"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_rule_groups_pass_promtool(tmp_path):
    docs = rendered(CHART / "ci/vllm-single-node-values.yaml")
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_chart_and_operator_make_the_same_kinds_of_objects():
    from deeplocal.deploy.reconcile import reconcile

    chart = {d["kind"] for d in rendered(CHART / "ci/vllm-multi-node-values.yaml", monitoring={"serviceMonitor": True})}
    op = reconcile({"apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment", "metadata": {"name": "llm"},
                    "spec": {"model": {"name": "deepseek-v3", "source": "deepseek-ai/DeepSeek-V3"},
                             "gpus": {"count": 16}, "autoscaling": {"enabled": True}}}, now="t")
    assert {m["kind"] for m in op.manifests} <= chart


def _schema_validator():
    import json

    import jsonschema

    return jsonschema.Draft7Validator(json.loads((CHART / "values.schema.json").read_text()))


@pytest.mark.parametrize("values_file", CI, ids=lambda p: p.stem)
def test_values_schema_accepts_the_ci_values(values_file):
    top = yaml.safe_load(values_file.read_text()) or {}
    _schema_validator().validate(merge_values(VALUES, top))


@pytest.mark.parametrize("bad", [{"gateway": {"auth": False}}, {"engine": {"nodes": 0}},
                                 {"service": {"type": "ExternalName"}}, {"model": {"name": "Bad Name"}}])
def test_values_schema_rejects_unsafe_or_wrong_values(bad):
    assert list(_schema_validator().iter_errors(merge_values(VALUES, bad)))
