"""The operator's brain, pure: a resource and what the cluster shows in; manifests, status and events out.

Conditions: Planned (the spec is valid and a layout was found), ModelReady (an engine pod has loaded the
model), Serving (the gateway and an engine are ready), Degraded (an invalid spec, or fewer ready replicas
than desired). An invalid spec yields no manifests at all: nothing is partially applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deeplocal.deploy.errors import DeploySpecError
from deeplocal.deploy.gateway_config import GATEWAY_PORT
from deeplocal.deploy.objects import Manifest, names_of
from deeplocal.deploy.render import Rendered, object_ref, render, stale_refs
from deeplocal.deploy.spec import LLMDeployment, parse_resource

CONDITIONS = ("Planned", "ModelReady", "Serving", "Degraded")


@dataclass(frozen=True, slots=True)
class Observed:
    """Ready pod counts read from the cluster (the Deployments' / LeaderWorkerSet's status)."""

    gateway_ready: int = 0
    engine_ready: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    type: str      # "Normal" | "Warning"
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    manifests: tuple[Manifest, ...]
    delete: tuple[str, ...]              # object refs applied before and no longer wanted
    status: dict[str, Any]
    events: tuple[Event, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return bool(self.manifests)


def _condition(kind: str, ok: bool | None, reason: str, message: str, now: str,
               previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    state = "Unknown" if ok is None else ("True" if ok else "False")
    before = previous.get(kind, {})
    since = before.get("lastTransitionTime") if before.get("status") == state else None
    return {"type": kind, "status": state, "reason": reason, "message": message,
            "lastTransitionTime": since or now}


def _previous(status: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (status or {}).get("conditions", []) if "type" in c}


def _invalid(problems: tuple[str, ...], generation: int | None, now: str,
             status: dict[str, Any] | None) -> Reconciliation:
    prev = _previous(status)
    message = "; ".join(problems)
    conditions = [
        _condition("Planned", False, "InvalidSpec", message, now, prev),
        _condition("ModelReady", None, "InvalidSpec", "not reconciled", now, prev),
        _condition("Serving", None, "InvalidSpec", "not reconciled: the objects applied before are kept", now,
                   prev),
        _condition("Degraded", True, "InvalidSpec", message, now, prev),
    ]
    kept = dict(status or {})
    kept.update({"observedGeneration": generation, "conditions": conditions, "phase": "Invalid"})
    return Reconciliation(manifests=(), delete=(), status=kept,
                          events=(Event("Warning", "InvalidSpec", message),))


def _desired_replicas(d: LLMDeployment) -> tuple[int, int]:
    s = d.spec
    engines = s.autoscaling.min_replicas if s.autoscaling.enabled else s.replicas
    if s.engine == "llamacpp":
        return engines, 0
    return s.gateway.replicas, engines


def serving_status(d: LLMDeployment, rendered: Rendered, observed: Observed, now: str,
                   status: dict[str, Any] | None) -> dict[str, Any]:
    prev = _previous(status)
    lay = rendered.layout
    want_gw, want_engine = _desired_replicas(d)
    model_holder = observed.gateway_ready if lay.engine == "llamacpp" else observed.engine_ready
    model_ready = model_holder > 0
    serving = observed.gateway_ready > 0 and model_ready
    short = []
    if observed.gateway_ready < want_gw:
        short.append(f"gateway {observed.gateway_ready}/{want_gw} ready")
    if lay.engine == "vllm" and observed.engine_ready < want_engine:
        short.append(f"engine {observed.engine_ready}/{want_engine} ready")
    n = names_of(d)
    scheme = "https" if d.spec.security.tls_secret else "http"
    conditions = [
        _condition("Planned", True, "Planned" if lay.planned else "AsSpecified", lay.summary, now, prev),
        _condition("ModelReady", model_ready, "Loaded" if model_ready else "Loading",
                   f"{d.spec.model.name} loaded" if model_ready else
                   f"importing or loading {d.spec.model.name}", now, prev),
        _condition("Serving", serving, "Ready" if serving else "NotReady",
                   f"{scheme}://{n.gateway}.{n.namespace}.svc:{GATEWAY_PORT}/v1" if serving else
                   "waiting for the gateway and a model replica", now, prev),
        _condition("Degraded", bool(short) and serving, "ReplicasNotReady" if short else "AsDesired",
                   "; ".join(short) or "all replicas ready", now, prev),
    ]
    phase = "Serving" if serving and not short else ("Degraded" if serving else "Progressing")
    return {
        "observedGeneration": d.metadata.generation, "phase": phase, "conditions": conditions,
        "layout": {"engine": lay.engine, "device": lay.device, "gpusPerPod": lay.gpus_per_pod,
                   "nodesPerReplica": lay.nodes, "tensorParallel": lay.tensor_parallel,
                   "pipelineParallel": lay.pipeline_parallel},
        "replicas": {"gateway": want_gw, "gatewayReady": observed.gateway_ready, "engine": want_engine,
                     "engineReady": observed.engine_ready},
        "endpoint": f"{scheme}://{n.gateway}.{n.namespace}.svc:{GATEWAY_PORT}/v1",
        "appliedObjects": [object_ref(m) for m in rendered.manifests],
    }


def _events(before: dict[str, Any] | None, after: dict[str, Any], rendered: Rendered) -> tuple[Event, ...]:
    prev = _previous(before)
    out: list[Event] = []
    for c in after["conditions"]:
        if prev.get(c["type"], {}).get("status") != c["status"] and c["status"] != "Unknown":
            bad = (c["type"] == "Degraded") == (c["status"] == "True")
            out.append(Event("Warning" if bad else "Normal", f"{c['type']}{c['status']}", c["message"]))
    if (before or {}).get("observedGeneration") != after["observedGeneration"]:
        out.append(Event("Normal", "Applied", f"{len(rendered.manifests)} objects for generation "
                                              f"{after['observedGeneration']}"))
    return tuple(out)


def reconcile(resource: dict[str, Any], observed: Observed = Observed(), *, now: str) -> Reconciliation:
    """What to apply, what to delete and the status to write for `resource` (a dict as the API returns
    it, `status` included). `now` is an RFC 3339 time for condition transitions."""
    status = resource.get("status") or None
    generation = (resource.get("metadata") or {}).get("generation")
    try:
        d = parse_resource(resource)
        rendered = render(d)
    except DeploySpecError as exc:
        return _invalid(exc.problems, generation, now, status)
    new_status = serving_status(d, rendered, observed, now, status)
    applied = (status or {}).get("appliedObjects", [])
    return Reconciliation(manifests=rendered.manifests, delete=stale_refs(applied, rendered.manifests),
                          status=new_status, events=_events(status, new_status, rendered))
