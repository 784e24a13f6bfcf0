"""Network policies, autoscaling and Prometheus scraping for one deployment."""

from __future__ import annotations

from typing import Any

from deeplocal.deploy import gateway_config as gc
from deeplocal.deploy.engine import LWS_API
from deeplocal.deploy.layout import ENGINE_PORT, EngineLayout
from deeplocal.deploy.objects import Manifest, meta, names_of, selector
from deeplocal.deploy.spec import LLMDeployment

MONITORING_NAMESPACE = "monitoring"
# Waiting requests per pod, as exposed to the HPA by prometheus-adapter (see docs/deploy.md).
ENGINE_QUEUE_METRIC = "vllm_num_requests_waiting"
GATEWAY_QUEUE_METRIC = "deeplocal_engine_requests_waiting"
SERVICE_COMPONENT_LABEL = "__meta_kubernetes_service_label_app_kubernetes_io_component"


def _from_monitoring() -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}


def engine_policy(d: LLMDeployment, layout: EngineLayout) -> Manifest:
    """Engines accept traffic only from this deployment's gateway (and Prometheus); a multi-node replica's
    pods also talk to each other (Ray, NCCL)."""
    ingress: list[dict[str, Any]] = [
        {"from": [{"podSelector": {"matchLabels": selector(d, "gateway")}}],
         "ports": [{"protocol": "TCP", "port": ENGINE_PORT}]},
        {"from": [_from_monitoring()], "ports": [{"protocol": "TCP", "port": ENGINE_PORT}]},
    ]
    if layout.nodes > 1:
        ingress.append({"from": [{"podSelector": {"matchLabels": selector(d, "engine")}}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(d, names_of(d).engine, "engine"),
            "spec": {"podSelector": {"matchLabels": selector(d, "engine")}, "policyTypes": ["Ingress"],
                     "ingress": ingress}}


def gateway_policy(d: LLMDeployment) -> Manifest:
    """The API port is reachable in-cluster (auth guards it; exposure is the Ingress's choice); metrics only
    from the monitoring namespace."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(d, names_of(d).gateway, "gateway"),
            "spec": {"podSelector": {"matchLabels": selector(d, "gateway")}, "policyTypes": ["Ingress"],
                     "ingress": [{"ports": [{"protocol": "TCP", "port": gc.GATEWAY_PORT}]},
                                 {"from": [_from_monitoring()],
                                  "ports": [{"protocol": "TCP", "port": gc.METRICS_PORT}]}]}}


def autoscaler(d: LLMDeployment, layout: EngineLayout) -> Manifest:
    a = d.spec.autoscaling
    if layout.engine == "llamacpp":
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": names_of(d).gateway}
        metric = GATEWAY_QUEUE_METRIC
    else:
        kind = "LeaderWorkerSet" if layout.nodes > 1 else "Deployment"
        target = {"apiVersion": LWS_API if layout.nodes > 1 else "apps/v1", "kind": kind,
                  "name": names_of(d).engine}
        metric = ENGINE_QUEUE_METRIC
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": meta(d, target["name"], "autoscaler"),
        "spec": {
            "scaleTargetRef": target, "minReplicas": a.min_replicas, "maxReplicas": a.max_replicas,
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": metric},
                                                  "target": {"type": "AverageValue",
                                                             "averageValue": str(a.target_queue_depth)}}}],
            # A GPU replica takes minutes to load: scale up promptly, scale down slowly.
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 60,
                                     "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
                         "scaleDown": {"stabilizationWindowSeconds": 600,
                                       "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]}},
        },
    }


def service_monitor(d: LLMDeployment, layout: EngineLayout) -> Manifest:
    interval = d.spec.monitoring.interval
    endpoints = [{"port": "metrics", "path": "/metrics", "interval": interval}]
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": meta(d, d.metadata.name, "monitoring"),
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/instance": d.metadata.name,
                                                     "app.kubernetes.io/name": "deeplocal"}},
                        "endpoints": endpoints}}
    if layout.engine == "vllm":
        # vLLM serves its own /metrics on the API port; the gateway Service has no `http` metrics there.
        endpoints.append({"port": "http", "path": "/metrics", "interval": interval,
                          "relabelings": [{"sourceLabels": [SERVICE_COMPONENT_LABEL],
                                           "regex": "engine", "action": "keep"}]})
    return monitor
