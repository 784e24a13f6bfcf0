"""vLLM engine objects: a Deployment (one node per replica) or a LeaderWorkerSet (a Ray cluster across
nodes per replica), and the Service the gateway routes to."""

from __future__ import annotations

import shlex
from typing import Any

from deeplocal.deploy.layout import ENGINE_PORT, MODELS_MOUNT, EngineLayout, vllm_argv
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
    tolerations,
)
from deeplocal.deploy.spec import LLMDeployment
from deeplocal.deploy.storage import import_init_container, models_volume

COMPONENT = "engine"
LWS_API = "leaderworkerset.x-k8s.io/v1"
RAY_PORT = 6379
LEADER_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"


def _shm_size(layout: EngineLayout) -> str:
    return f"{max(2, 4 * layout.gpus_per_pod)}Gi"


def _volumes(d: LLMDeployment, layout: EngineLayout) -> list[dict[str, Any]]:
    return [models_volume(d), {"name": "tmp", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": _shm_size(layout)}}]


def _mounts() -> list[dict[str, Any]]:
    return [{"name": "models", "mountPath": MODELS_MOUNT}, {"name": "tmp", "mountPath": "/tmp"},
            {"name": "dshm", "mountPath": "/dev/shm"}]


def _env(d: LLMDeployment) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}, {"name": "HF_HUB_OFFLINE", "value": "1"},
                                 {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
                                 {"name": "DO_NOT_TRACK", "value": "1"}]
    if d.spec.security.engine_key_secret:
        env.append(secret_env("VLLM_API_KEY", d.spec.security.engine_key_secret, "key"))
    return env


def _container(d: LLMDeployment, layout: EngineLayout, command: list[str], *, serves: bool) -> dict[str, Any]:
    gpu = d.spec.gpus.resource if d.spec.gpus else "nvidia.com/gpu"
    c: dict[str, Any] = {
        "name": "vllm" if serves else "ray-worker", "image": d.spec.images.cuda,
        "imagePullPolicy": d.spec.images.pull_policy, "command": command, "env": _env(d),
        "volumeMounts": _mounts(),
        "resources": {"limits": {gpu: str(layout.gpus_per_pod)}, "requests": {gpu: str(layout.gpus_per_pod)}},
        "securityContext": container_security(),
    }
    if serves:
        c["ports"] = [{"name": "http", "containerPort": ENGINE_PORT}]
        # Loading weights can take many minutes: the startup probe allows an hour before liveness applies.
        c["startupProbe"] = http_probe("/health", "http", https=False, period=10, failures=360)
        c["livenessProbe"] = http_probe("/health", "http", https=False, period=15, failures=4)
        c["readinessProbe"] = http_probe("/health", "http", https=False, period=5, failures=3)
    return c


def _pod(d: LLMDeployment, layout: EngineLayout, containers: list[dict[str, Any]], *, init: bool) -> dict:
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False, "securityContext": pod_security(),
        "terminationGracePeriodSeconds": 60, "containers": containers, "volumes": _volumes(d, layout),
        "tolerations": tolerations(d, gpu=True),
    }
    if d.spec.node_selector:
        pod["nodeSelector"] = dict(d.spec.node_selector)
    init_c = import_init_container(d) if init else None
    if init_c:
        pod["initContainers"] = [init_c]
    return pod


def _template(d: LLMDeployment, pod: dict[str, Any], config_hash: str) -> dict[str, Any]:
    return {"metadata": {"labels": labels(d, COMPONENT), "annotations": {"deeplocal.dev/config-hash": config_hash}},
            "spec": pod}


def deployment(d: LLMDeployment, layout: EngineLayout, config_hash: str) -> Manifest:
    container = _container(d, layout, vllm_argv(d.spec, layout), serves=True)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(d, COMPONENT)},
        # Replace one replica at a time and never run fewer than asked: GPUs are the scarce resource, so
        # surge only when the cluster has a spare replica's worth.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": _template(d, _pod(d, layout, [container], init=True), config_hash),
    }
    if not d.spec.autoscaling.enabled:
        spec["replicas"] = d.spec.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(d, names_of(d).engine, COMPONENT),
            "spec": spec}


def leader_worker_set(d: LLMDeployment, layout: EngineLayout, config_hash: str) -> Manifest:
    serve = shlex.join(vllm_argv(d.spec, layout))
    leader_cmd = ["/bin/sh", "-c", f"ray start --head --port={RAY_PORT} && exec {serve}"]
    worker_cmd = ["/bin/sh", "-c", f"exec ray start --address=$LWS_LEADER_ADDRESS:{RAY_PORT} --block"]
    leader = _template(d, _pod(d, layout, [_container(d, layout, leader_cmd, serves=True)], init=True), config_hash)
    worker = _template(d, _pod(d, layout, [_container(d, layout, worker_cmd, serves=False)], init=False),
                       config_hash)
    spec: dict[str, Any] = {
        "startupPolicy": "LeaderCreated",
        "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {"maxUnavailable": 0,
                                                                                   "maxSurge": 1}},
        "leaderWorkerTemplate": {"size": layout.nodes, "restartPolicy": "RecreateGroupOnPodRestart",
                                 "leaderTemplate": leader, "workerTemplate": worker},
    }
    if not d.spec.autoscaling.enabled:
        spec["replicas"] = d.spec.replicas
    return {"apiVersion": LWS_API, "kind": "LeaderWorkerSet", "metadata": meta(d, names_of(d).engine, COMPONENT),
            "spec": spec}


def service(d: LLMDeployment, layout: EngineLayout) -> Manifest:
    sel = dict(selector(d, COMPONENT))
    if layout.nodes > 1:
        sel[LEADER_LABEL] = "0"   # only leaders serve HTTP
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(d, names_of(d).engine, COMPONENT),
            "spec": {"type": "ClusterIP", "selector": sel,
                     "ports": [{"name": "http", "port": ENGINE_PORT, "targetPort": "http"}]}}


def workload(d: LLMDeployment, layout: EngineLayout, config_hash: str) -> Manifest:
    if layout.nodes > 1:
        return leader_worker_set(d, layout, config_hash)
    return deployment(d, layout, config_hash)


def objects(d: LLMDeployment, layout: EngineLayout, config_hash: str) -> list[Manifest]:
    return [workload(d, layout, config_hash), service(d, layout)]
