"""Gateway objects: ConfigMap, Deployment, Service, PodDisruptionBudget, and its data volume.

The gateway is deeplocal itself (`deeplocal serve`): auth, quotas, PII, audit, routing and metrics. With
engine llamacpp it also holds the model; with vllm it routes to the engine Service.
"""

from __future__ import annotations

from typing import Any

from deeplocal.deploy import gateway_config as gc
from deeplocal.deploy.layout import MODELS_MOUNT, EngineLayout, needs_import
from deeplocal.deploy.objects import (
    Manifest,
    container_security,
    http_probe,
    labels,
    meta,
    names_of,
    pod_security,
    secret_env,
    selector,
)
from deeplocal.deploy.spec import LLMDeployment
from deeplocal.deploy.storage import import_init_container, models_volume

COMPONENT = "gateway"


def config_map(d: LLMDeployment, config_text: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(d, names_of(d).config, COMPONENT),
            "data": {"deeplocal.yaml": config_text}}


def uses_sqlite(d: LLMDeployment) -> bool:
    return d.spec.security.database_secret is None


def data_claim(d: LLMDeployment) -> Manifest:
    """SQLite keys/usage and audit segments for a single gateway without a database Secret."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
    if d.spec.storage.storage_class_name:
        spec["storageClassName"] = d.spec.storage.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": meta(d, names_of(d).data, COMPONENT), "spec": spec}


def _env(d: LLMDeployment) -> list[dict[str, Any]]:
    sec = d.spec.security
    env: list[dict[str, Any]] = [{"name": "DEEPLOCAL_CONFIG", "value": gc.CONFIG_FILE},
                                 {"name": "HOME", "value": "/tmp"}, gc.models_env()]
    if sec.database_secret:
        env.append(secret_env("DEEPLOCAL_DATABASE_URL", sec.database_secret, "url"))
    if sec.audit_key_secret:
        env.append(secret_env("DEEPLOCAL_AUDIT_KEY", sec.audit_key_secret, "key"))
    if sec.engine_key_secret and d.spec.engine == "vllm":
        env.append(secret_env(gc.ENGINE_KEY_ENV, sec.engine_key_secret, "key"))
    return env


def _volumes(d: LLMDeployment) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    n = names_of(d)
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": n.config}},
                                     {"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "config", "mountPath": gc.CONFIG_DIR, "readOnly": True},
                                    {"name": "tmp", "mountPath": "/tmp"}]
    data = {"persistentVolumeClaim": {"claimName": n.data}} if uses_sqlite(d) else {"emptyDir": {}}
    volumes.append({"name": "data", **data})
    mounts.append({"name": "data", "mountPath": gc.DATA_DIR})
    if d.spec.security.tls_secret:
        volumes.append({"name": "tls", "secret": {"secretName": d.spec.security.tls_secret}})
        mounts.append({"name": "tls", "mountPath": gc.TLS_DIR, "readOnly": True})
    if d.spec.engine == "llamacpp" and needs_import(d.spec):
        volumes.append(models_volume(d))
        mounts.append({"name": "models", "mountPath": MODELS_MOUNT})
    return volumes, mounts


def _container(d: LLMDeployment, layout: EngineLayout) -> dict[str, Any]:
    https = bool(d.spec.security.tls_secret)
    _, mounts = _volumes(d)
    g = d.spec.gateway
    requests = {"cpu": g.cpu, "memory": g.memory}
    return {
        "name": "gateway", "image": d.spec.images.cpu, "imagePullPolicy": d.spec.images.pull_policy,
        "args": ["serve", "--config", gc.CONFIG_FILE],
        "ports": [{"name": "http", "containerPort": gc.GATEWAY_PORT},
                  {"name": "metrics", "containerPort": gc.METRICS_PORT}],
        "env": _env(d), "volumeMounts": mounts,
        "resources": {"requests": requests, "limits": {"memory": g.memory}},
        "startupProbe": http_probe("/health", "http", https=https, period=5, failures=120),
        "livenessProbe": http_probe("/health", "http", https=https, period=10, failures=3),
        "readinessProbe": http_probe("/ready", "http", https=https, period=5, failures=2),
        "securityContext": container_security(),
    }


def deployment(d: LLMDeployment, layout: EngineLayout, config_hash: str) -> Manifest:
    replicas = d.spec.replicas if layout.engine == "llamacpp" else d.spec.gateway.replicas
    volumes, _ = _volumes(d)
    pod: dict[str, Any] = {
        "serviceAccountName": names_of(d).gateway, "automountServiceAccountToken": False,
        "securityContext": pod_security(), "terminationGracePeriodSeconds": 45,
        "containers": [_container(d, layout)], "volumes": volumes,
    }
    if layout.engine == "llamacpp":
        init = import_init_container(d)
        if init:
            pod["initContainers"] = [init]
        if d.spec.node_selector:
            pod["nodeSelector"] = dict(d.spec.node_selector)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(d, names_of(d).gateway, COMPONENT),
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": selector(d, COMPONENT)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels(d, COMPONENT),
                                      "annotations": {"deeplocal.dev/config-hash": config_hash}},
                         "spec": pod},
        },
    }


def service_account(d: LLMDeployment) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(d, names_of(d).gateway, COMPONENT),
            "automountServiceAccountToken": False}


def service(d: LLMDeployment) -> Manifest:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(d, names_of(d).gateway, COMPONENT),
            "spec": {"type": "ClusterIP", "selector": selector(d, COMPONENT),
                     "ports": [{"name": "http", "port": gc.GATEWAY_PORT, "targetPort": "http"},
                               {"name": "metrics", "port": gc.METRICS_PORT, "targetPort": "metrics"}]}}


def disruption_budget(d: LLMDeployment) -> Manifest:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": meta(d, names_of(d).gateway, COMPONENT),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(d, COMPONENT)}}}


def objects(d: LLMDeployment, layout: EngineLayout, config_text: str) -> list[Manifest]:
    out = [service_account(d), config_map(d, config_text)]
    if uses_sqlite(d):
        out.append(data_claim(d))
    out += [deployment(d, layout, gc.config_hash(config_text)), service(d), disruption_budget(d)]
    return out
