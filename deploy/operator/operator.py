"""kopf entry point for the LLMDeployment operator: `kopf run deploy/operator/operator.py --all-namespaces`.

All decisions are made by `deeplocal.deploy.reconcile.reconcile` (pure, unit-tested); this file only moves
objects between it and the API server: server-side apply of what it returns, deletion of what it no longer
wants, status and events. Owner references on every object let Kubernetes clean up on deletion, so there
is no delete handler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import kopf

from deeplocal.deploy.reconcile import Event, Observed, Reconciliation, reconcile
from deeplocal.deploy.spec import GROUP, PLURAL, VERSION

FIELD_MANAGER = "deeplocal-operator"
LWS_API = "leaderworkerset.x-k8s.io/v1"


class Cluster(Protocol):
    """The part of `kubernetes.dynamic.DynamicClient` used here (`client.resources.get(...)`)."""

    resources: Any


def _client() -> Cluster:
    from kubernetes import config as k8s_config
    from kubernetes import dynamic
    from kubernetes.client import api_client

    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    return dynamic.DynamicClient(api_client.ApiClient())


def _ready(client: Cluster, api: str, kind: str, ns: str, name: str) -> int:
    try:
        obj = client.resources.get(api_version=api, kind=kind).get(name=name, namespace=ns)
    except Exception:  # noqa: BLE001 - not created yet, or its CRD is missing: nothing is ready
        return 0
    status = obj["status"] if isinstance(obj, dict) else obj.status
    return int((status or {}).get("readyReplicas") or 0)


def observe(client: Cluster, body: dict[str, Any]) -> Observed:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    engine = _ready(client, "apps/v1", "Deployment", ns, f"{name}-engine") or \
        _ready(client, LWS_API, "LeaderWorkerSet", ns, f"{name}-engine")
    return Observed(gateway_ready=_ready(client, "apps/v1", "Deployment", ns, f"{name}-gateway"),
                    engine_ready=engine)


def apply(client: Cluster, manifest: dict[str, Any]) -> None:
    res = client.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    res.server_side_apply(body=manifest, name=manifest["metadata"]["name"],
                          namespace=manifest["metadata"].get("namespace"), field_manager=FIELD_MANAGER,
                          force_conflicts=True)


def delete(client: Cluster, ref: str) -> None:
    api_kind, ns, name = ref.rsplit("/", 2)
    api, kind = api_kind.rsplit("/", 1)
    client.resources.get(api_version=api, kind=kind).delete(name=name, namespace=ns or None)


def run_once(client: Cluster, body: dict[str, Any], *, now: str,
             emit: Callable[[Event], None]) -> Reconciliation:
    """One pass: observe, decide (pure), apply everything or nothing, prune, report. Returns the decision;
    the caller writes `result.status`."""
    result = reconcile(body, observe(client, body), now=now)
    for manifest in result.manifests:   # empty for an invalid spec: nothing is partially applied
        apply(client, manifest)
    for ref in result.delete:
        delete(client, ref)
    for event in result.events:
        emit(event)
    return result


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.timer(GROUP, VERSION, PLURAL, interval=30, idle=15)
def reconcile_handler(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def emit(event: Event) -> None:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)

    result = run_once(_client(), dict(body), now=now, emit=emit)
    patch.status.update(result.status)
