"""The `LLMDeployment` custom resource: "serve this model on these GPUs, and keep it so".

Field names are camelCase on the wire (Kubernetes style) and snake_case in Python. The models are frozen
and reject unknown keys, so a typo in a resource is a clear error rather than a silently ignored field.
`parse_resource` turns a whole resource (a dict from YAML or from the API server) into a checked
`LLMDeployment`, or raises `DeploySpecError` listing every problem.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from deeplocal.deploy.errors import DeploySpecError

GROUP = "deeplocal.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LLMDeployment"
PLURAL = "llmdeployments"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
APP_VERSION = "0.1.0"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ModelRef(_Spec):
    # Served model id and model-store id; with plan: auto also the planner's model name.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")
    source: str = Field(min_length=1)      # Hugging Face repo (ORG/NAME[@REV]) or a path under /models
    architecture: str | None = None        # planner catalog name when `name` is not one


class GpuSpec(_Spec):
    count: int = Field(1, ge=1, le=64)     # GPUs per engine replica (all nodes of a multi-node replica)
    type: str | None = None                # planner catalog name: h100-sxm, a100-80gb, l40s, ...
    resource: str = "nvidia.com/gpu"
    per_node: int = Field(8, ge=1, le=16)  # GPUs one node holds; more than that spans nodes


class AutoscalingSpec(_Spec):
    enabled: bool = False
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(4, ge=1)
    target_queue_depth: int = Field(4, ge=1)   # waiting requests per engine replica

    @model_validator(mode="after")
    def _order(self) -> AutoscalingSpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError("autoscaling.maxReplicas must be >= autoscaling.minReplicas")
        return self


class SecuritySpec(_Spec):
    auth: bool = True                          # API-key auth on the gateway; required off loopback
    database_secret: str | None = None         # Secret with key `url`: PostgreSQL for keys, usage, audit
    audit_key_secret: str | None = None        # Secret with key `key`: base64 of 32 bytes (AES-256-GCM)
    store_bodies: bool = False                 # keep encrypted prompt/completion bodies in the audit log
    tls_secret: str | None = None              # kubernetes.io/tls Secret: the gateway serves HTTPS
    engine_key_secret: str | None = None       # Secret with key `key`: vLLM's --api-key, sent by the gateway


class GatewaySpec(_Spec):
    replicas: int = Field(1, ge=1, le=100)   # more than 1 needs security.databaseSecret
    cpu: str = "1"
    memory: str = "2Gi"


class StorageSpec(_Spec):
    size: str = "100Gi"
    storage_class_name: str | None = None
    host_path: str | None = None               # use a node directory instead of a PVC
    existing_claim: str | None = None


class ImagesSpec(_Spec):
    cpu: str = f"ghcr.io/deeplocal/deeplocal:{APP_VERSION}-cpu"
    cuda: str = f"ghcr.io/deeplocal/deeplocal:{APP_VERSION}-cuda"
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class Toleration(_Spec):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class MonitoringSpec(_Spec):
    service_monitor: bool = True
    interval: str = "15s"


class LLMDeploymentSpec(_Spec):
    model: ModelRef
    precision: str = "bf16"
    engine: Literal["vllm", "llamacpp"] = "vllm"
    plan: Literal["auto", "manual"] = "manual"
    gpus: GpuSpec | None = None
    replicas: int = Field(1, ge=0, le=100)     # engine replicas (llamacpp: gateway replicas, model inside)
    autoscaling: AutoscalingSpec = AutoscalingSpec()
    max_context: int = Field(8192, ge=256, le=1_048_576)
    concurrency: int = Field(16, ge=1, le=1024)   # sequences per replica the plan must hold
    routing: dict[str, Any] = Field(default_factory=dict)   # extra deeplocal.yaml `routing:` (upstreams)
    # More deeplocal.yaml settings (pii, gateway limits, audit retention...), merged under the generated
    # ones: server.host/port, gateway.auth, data_dir and the model/engine wiring always win.
    settings: dict[str, Any] = Field(default_factory=dict)
    security: SecuritySpec = SecuritySpec()
    gateway: GatewaySpec = GatewaySpec()
    storage: StorageSpec = StorageSpec()
    images: ImagesSpec = ImagesSpec()
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    monitoring: MonitoringSpec = MonitoringSpec()


class Metadata(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None


class LLMDeployment(BaseModel):
    model_config = ConfigDict(frozen=True)

    metadata: Metadata
    spec: LLMDeploymentSpec


def _pydantic_problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        out.append(f"spec.{where}: {msg}")
    return out


def semantic_problems(meta: Metadata, spec: LLMDeploymentSpec) -> list[str]:
    """What the schema cannot say: the rules that tie fields together."""
    out: list[str] = []
    if not DNS_LABEL.match(meta.name) or len(meta.name) > 40:
        out.append(f"metadata.name {meta.name!r} must be a DNS label of at most 40 characters "
                   "(objects are named <name>-gateway, <name>-engine)")
    if not spec.security.auth:
        out.append("spec.security.auth must be true: in a cluster the gateway listens on 0.0.0.0 and "
                   "deeplocal refuses to serve there without API-key auth")
    if spec.security.store_bodies and not spec.security.audit_key_secret:
        out.append("spec.security.storeBodies needs spec.security.auditKeySecret (bodies are only kept "
                   "encrypted)")
    gateways = spec.replicas if spec.engine == "llamacpp" else spec.gateway.replicas
    if gateways > 1 and not spec.security.database_secret:
        out.append(f"{gateways} gateway replicas need a shared database: set spec.security.databaseSecret "
                   "(PostgreSQL URL); without it keys and usage live in SQLite on one replica's volume")
    if spec.engine == "llamacpp" and spec.autoscaling.enabled and spec.autoscaling.max_replicas > 1 \
            and not spec.security.database_secret and gateways <= 1:
        out.append("autoscaling llamacpp gateways beyond one replica needs spec.security.databaseSecret "
                   "(shared keys and usage)")
    if spec.engine == "vllm" and spec.plan == "manual" and spec.gpus is None:
        out.append("spec.gpus is required with engine vllm and plan manual (or set plan: auto)")
    if spec.engine == "llamacpp" and spec.gpus is not None and spec.plan == "manual":
        out.append("spec.gpus is set but engine is llamacpp: the CPU image serves GGUF models in the "
                   "gateway pods; use engine vllm for GPUs")
    if spec.storage.host_path and spec.storage.existing_claim:
        out.append("spec.storage: set hostPath or existingClaim, not both")
    return out


def parse_resource(doc: dict[str, Any]) -> LLMDeployment:
    """A checked `LLMDeployment` from a resource dict; `DeploySpecError` lists every problem."""
    problems: list[str] = []
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        problems.append(f"apiVersion/kind must be {API_VERSION}/{KIND}, got "
                        f"{doc.get('apiVersion')}/{doc.get('kind')}")
    try:
        meta = Metadata(**(doc.get("metadata") or {}))
    except ValidationError:
        raise DeploySpecError([*problems, "metadata.name is required"]) from None
    try:
        spec = LLMDeploymentSpec(**(doc.get("spec") or {}))
    except ValidationError as exc:
        raise DeploySpecError([*problems, *_pydantic_problems(exc)]) from None
    problems += semantic_problems(meta, spec)
    if problems:
        raise DeploySpecError(problems)
    return LLMDeployment(metadata=meta, spec=spec)
