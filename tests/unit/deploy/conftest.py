"""Shared helpers for the deploy tests: offline Kubernetes schema validation."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

K8S_VERSION = "1.32"
# Kinds from CRDs whose schemas kubernetes-validate does not ship; their pod templates are validated
# separately (as core/v1 PodTemplate) and their shape checked by the tests.
CUSTOM_KINDS = {"LeaderWorkerSet", "ServiceMonitor", "PrometheusRule"}


def validate_k8s(manifest: dict[str, Any]) -> None:
    """Strict validation (unknown fields are errors) against the Kubernetes OpenAPI schemas."""
    if manifest["kind"] in CUSTOM_KINDS:
        for template in pod_templates(manifest):
            kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate",
                                          "metadata": {"name": "t"}, "template": template},
                                         K8S_VERSION, strict=True)
        return
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def pod_templates(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    if manifest["kind"] == "LeaderWorkerSet":
        lwt = manifest["spec"]["leaderWorkerTemplate"]
        return [lwt["leaderTemplate"], lwt["workerTemplate"]]
    return []


@pytest.fixture
def k8s_validate():
    return validate_k8s
