"""Spec in, manifests out: every object one `LLMDeployment` becomes, in apply order."""

from __future__ import annotations

from dataclasses import dataclass

from deeplocal.deploy import engine, gateway, policy
from deeplocal.deploy import gateway_config as gc
from deeplocal.deploy.layout import EngineLayout, engine_layout, needs_import
from deeplocal.deploy.objects import Manifest, names_of
from deeplocal.deploy.spec import LLMDeployment
from deeplocal.deploy.storage import models_claim

# Apply order: what others refer to first (config, storage, services), workloads after.
KIND_ORDER = ("ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Service", "NetworkPolicy",
              "Deployment", "LeaderWorkerSet", "PodDisruptionBudget", "HorizontalPodAutoscaler",
              "ServiceMonitor")


@dataclass(frozen=True, slots=True)
class Rendered:
    layout: EngineLayout
    manifests: tuple[Manifest, ...]
    config_text: str


def render(d: LLMDeployment, layout: EngineLayout | None = None) -> Rendered:
    """All objects for `d`. Raises DeploySpecError (nothing rendered) if it cannot be planned or built."""
    layout = layout or engine_layout(d.spec)
    config_text = gc.render_yaml(gc.gateway_settings(d.spec, names_of(d), layout))
    out: list[Manifest] = []
    claim = models_claim(d, layout) if (layout.engine == "vllm" or needs_import(d.spec)) else None
    if claim:
        out.append(claim)
    out += gateway.objects(d, layout, config_text)
    if layout.engine == "vllm":
        out += engine.objects(d, layout, gc.config_hash(repr(layout)))
        out.append(policy.engine_policy(d, layout))
    out.append(policy.gateway_policy(d))
    if d.spec.autoscaling.enabled:
        out.append(policy.autoscaler(d, layout))
    if d.spec.monitoring.service_monitor:
        out.append(policy.service_monitor(d, layout))
    out.sort(key=lambda m: KIND_ORDER.index(m["kind"]))
    return Rendered(layout=layout, manifests=tuple(out), config_text=config_text)


def object_ref(m: Manifest) -> str:
    """`apiVersion/kind/namespace/name`: how the operator remembers what it applied."""
    md = m["metadata"]
    return f"{m['apiVersion']}/{m['kind']}/{md.get('namespace', '')}/{md['name']}"


def stale_refs(applied: list[str] | tuple[str, ...], desired: tuple[Manifest, ...]) -> tuple[str, ...]:
    """Objects applied before that the new spec no longer makes (e.g. the HPA after autoscaling is turned
    off, the Deployment after a switch to a multi-node LeaderWorkerSet): the operator deletes them."""
    wanted = {object_ref(m) for m in desired}
    return tuple(ref for ref in applied if ref not in wanted)
