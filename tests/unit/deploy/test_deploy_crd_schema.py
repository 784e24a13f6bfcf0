"""The CRD's OpenAPI schema accepts good LLMDeployments and rejects bad ones, with the same JSON Schema
validator kubernetes-validate uses (Draft 2020-12)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from deeplocal.deploy.crd import crd

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "deploy/operator/crd.yaml"
EXAMPLE = ROOT / "deploy/operator/example-llmdeployment.yaml"


def _nullable_to_jsonschema(node):
    """OpenAPI's `nullable: true` is JSON Schema's `type: [T, "null"]` (the API server treats it so)."""
    if isinstance(node, list):
        return [_nullable_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@pytest.fixture(scope="module")
def validator():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft202012Validator(_nullable_to_jsonschema(schema))


def test_crd_file_is_generated_and_is_a_valid_crd(k8s_validate):
    on_disk = yaml.safe_load(CRD_FILE.read_text())
    assert on_disk == crd(), "regenerate: deeplocal deploy crd > deploy/operator/crd.yaml"
    k8s_validate(on_disk)


def test_example_is_accepted(validator):
    validator.validate(yaml.safe_load(EXAMPLE.read_text()))


@pytest.mark.parametrize("path,value", [
    (("spec", "engine"), "tgi"),
    (("spec", "plan"), "sometimes"),
    (("spec", "replicas"), -1),
    (("spec", "maxContext"), 16),
    (("spec", "gpus"), {"count": 0}),
    (("spec", "security"), {"auth": "yes"}),
    (("spec", "model"), {"name": "x"}),                # source missing
    (("spec", "tolerations"), [{"operator": "Sometimes"}]),
])
def test_bad_resources_are_rejected(validator, path, value):
    doc = yaml.safe_load(EXAMPLE.read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = list(validator.iter_errors(doc))
    assert errors, f"{path}={value!r} was accepted"


def test_missing_spec_is_rejected(validator):
    doc = yaml.safe_load(EXAMPLE.read_text())
    del doc["spec"]
    assert list(validator.iter_errors(doc))


def test_operator_install_manifests_validate(k8s_validate):
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy/operator/rbac.yaml").read_text()) if d]
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                         "Deployment"}
    for d in docs:
        k8s_validate(d)


def test_operator_may_manage_every_kind_it_renders():
    from deeplocal.deploy.render import KIND_ORDER

    role = next(d for d in yaml.safe_load_all((ROOT / "deploy/operator/rbac.yaml").read_text())
                if d and d["kind"] == "ClusterRole")
    granted = {r for rule in role["rules"] if "patch" in rule["verbs"] for r in rule["resources"]}
    plural = {"ServiceAccount": "serviceaccounts", "ConfigMap": "configmaps",
              "PersistentVolumeClaim": "persistentvolumeclaims", "Service": "services",
              "NetworkPolicy": "networkpolicies", "Deployment": "deployments",
              "LeaderWorkerSet": "leaderworkersets", "PodDisruptionBudget": "poddisruptionbudgets",
              "HorizontalPodAutoscaler": "horizontalpodautoscalers", "ServiceMonitor": "servicemonitors"}
    assert {plural[k] for k in KIND_ORDER} <= granted
