"""The operator's manifests validate against the Kubernetes schemas, for several kinds of deployment."""

from __future__ import annotations

import copy

import pytest
import yaml

from deeplocal.deploy import gateway_config
from deeplocal.deploy.render import render
from deeplocal.deploy.spec import parse_resource

BASE = {"apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment",
        "metadata": {"name": "r1", "namespace": "llm", "uid": "0b5e6c1e-1111-2222-3333-444455556666"}}


def resource(**spec) -> dict:
    doc = copy.deepcopy(BASE)
    doc["spec"] = spec
    return doc


SPECS = {
    "cpu-bundled": {"model": {"name": "smollm2-135m-instruct", "source": "smollm2-135m"}, "engine": "llamacpp"},
    "cpu-hub-autoscaled": {"model": {"name": "qwen-0.5b", "source": "Qwen/Qwen2.5-0.5B-Instruct-GGUF"},
                           "engine": "llamacpp", "replicas": 2, "autoscaling": {"enabled": True},
                           "security": {"databaseSecret": "db"}},
    "vllm-manual": {"model": {"name": "r1-7b", "source": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
                    "gpus": {"count": 2}, "replicas": 2, "tolerations": [{"key": "gpu", "operator": "Exists"}],
                    "nodeSelector": {"gpu": "l40s"},
                    "security": {"tlsSecret": "tls", "auditKeySecret": "ak", "storeBodies": True,
                                 "engineKeySecret": "ek"}},
    "vllm-auto-multinode": {"model": {"name": "deepseek-v3", "source": "deepseek-ai/DeepSeek-V3"},
                            "precision": "fp8", "plan": "auto", "gpus": {"type": "h100-sxm"},
                            "autoscaling": {"enabled": True, "maxReplicas": 2},
                            "storage": {"existingClaim": "weights"},
                            "routing": {"upstreams": {"cloud": {"kind": "remote",
                                                                "base_url": "https://api.deepseek.com/v1"}}}},
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_manifest_validates(name, k8s_validate):
    rendered = render(parse_resource(resource(**SPECS[name])))
    assert rendered.manifests
    for m in rendered.manifests:
        k8s_validate(m)
        assert m["metadata"]["ownerReferences"][0]["uid"] == BASE["metadata"]["uid"]
        assert m["metadata"]["namespace"] == "llm"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_gateway_config_is_valid_deeplocal_yaml(name):
    rendered = render(parse_resource(resource(**SPECS[name])))
    cm = next(m for m in rendered.manifests if m["kind"] == "ConfigMap")
    doc = yaml.safe_load(cm["data"]["deeplocal.yaml"])
    gateway_config.check_sections(doc)   # raises on any invalid section
    assert doc["gateway"]["auth"] is True and doc["server"]["host"] == "0.0.0.0"


def test_multinode_uses_leader_worker_set_and_leader_only_service():
    rendered = render(parse_resource(resource(**SPECS["vllm-auto-multinode"])))
    kinds = {m["kind"]: m for m in rendered.manifests}
    lws = kinds["LeaderWorkerSet"]
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == rendered.layout.nodes == 2
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    worker = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert "--distributed-executor-backend ray" in leader["containers"][0]["command"][2]
    assert "initContainers" in leader and "initContainers" not in worker   # one import, by the leader
    assert leader["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    engine_svc = next(m for m in rendered.manifests if m["kind"] == "Service" and m["metadata"]["name"] == "r1-engine")
    assert engine_svc["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    assert "Deployment" in kinds and kinds["Deployment"]["metadata"]["name"] == "r1-gateway"
    hpa = kinds["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"


def test_engine_network_policy_admits_only_the_gateway_and_monitoring():
    rendered = render(parse_resource(resource(**SPECS["vllm-manual"])))
    pol = next(m for m in rendered.manifests if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == "r1-engine")
    sources = [src for rule in pol["spec"]["ingress"] for src in rule["from"]]
    assert sources == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "deeplocal",
                                                        "app.kubernetes.io/instance": "r1",
                                                        "app.kubernetes.io/component": "gateway"}}},
                       {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_containers_are_hardened_and_probed():
    rendered = render(parse_resource(resource(**SPECS["vllm-manual"])))
    for m in rendered.manifests:
        if m["kind"] != "Deployment":
            continue
        pod = m["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        main = pod["containers"][0]
        assert main["readinessProbe"]["httpGet"]["path"] in ("/ready", "/health")
    gw = next(m for m in rendered.manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "r1-gateway")
    c = gw["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http", "scheme": "HTTPS"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"name": "DEEPLOCAL_AUDIT_KEY", "valueFrom": {"secretKeyRef": {"name": "ak", "key": "key"}}} in c["env"]
