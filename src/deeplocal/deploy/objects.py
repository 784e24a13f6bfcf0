"""Building blocks shared by every manifest: names, labels, owner references, hardened containers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deeplocal.deploy.spec import API_VERSION, APP_VERSION, KIND, LLMDeployment

Manifest = dict[str, Any]
RUN_AS = 10001
MANAGER = "deeplocal-operator"


@dataclass(frozen=True, slots=True)
class Names:
    """Object names for one deployment; everything it makes starts with its name."""

    base: str
    namespace: str

    @property
    def gateway(self) -> str:
        return f"{self.base}-gateway"

    @property
    def engine(self) -> str:
        return f"{self.base}-engine"

    @property
    def config(self) -> str:
        return f"{self.base}-config"

    @property
    def models(self) -> str:
        return f"{self.base}-models"

    @property
    def data(self) -> str:
        return f"{self.base}-data"


def names_of(d: LLMDeployment) -> Names:
    return Names(d.metadata.name, d.metadata.namespace)


def labels(d: LLMDeployment, component: str) -> dict[str, str]:
    return {**selector(d, component), "app.kubernetes.io/version": APP_VERSION,
            "app.kubernetes.io/managed-by": MANAGER}


def selector(d: LLMDeployment, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "deeplocal", "app.kubernetes.io/instance": d.metadata.name,
            "app.kubernetes.io/component": component}


def meta(d: LLMDeployment, name: str, component: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": d.metadata.namespace, "labels": labels(d, component)}
    if d.metadata.uid:
        out["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": KIND, "name": d.metadata.name,
                                   "uid": d.metadata.uid, "controller": True, "blockOwnerDeletion": True}]
    out.update(extra)
    return out


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def tolerations(d: LLMDeployment, *, gpu: bool) -> list[dict[str, Any]]:
    out = [t.model_dump(exclude_none=True) for t in d.spec.tolerations]
    resource = (d.spec.gpus.resource if d.spec.gpus else "nvidia.com/gpu") if gpu else ""
    if resource and not any(t.get("key") == resource for t in out):
        out.append({"key": resource, "operator": "Exists", "effect": "NoSchedule"})
    return out


def http_probe(path: str, port: str, *, https: bool, period: int, failures: int, delay: int = 0) -> dict:
    probe: dict[str, Any] = {"httpGet": {"path": path, "port": port, "scheme": "HTTPS" if https else "HTTP"},
                             "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 5}
    if delay:
        probe["initialDelaySeconds"] = delay
    return probe
