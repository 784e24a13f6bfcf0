"""The gateway's deeplocal.yaml, built from the spec and checked with deeplocal's own settings models."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml
from pydantic import ValidationError

from deeplocal.deploy.errors import DeploySpecError
from deeplocal.deploy.layout import ENGINE_PORT, MODELS_MOUNT, EngineLayout, needs_import
from deeplocal.deploy.objects import Names
from deeplocal.deploy.spec import LLMDeploymentSpec

GATEWAY_PORT = 8000
METRICS_PORT = 9100
CONFIG_DIR = "/etc/deeplocal"
CONFIG_FILE = f"{CONFIG_DIR}/deeplocal.yaml"
TLS_DIR = "/etc/deeplocal/tls"
DATA_DIR = "/var/lib/deeplocal"
ENGINE_KEY_ENV = "DEEPLOCAL_ENGINE_KEY"
ENGINE_UPSTREAM = "engine"


def _routing(spec: LLMDeploymentSpec, names: Names, layout: EngineLayout) -> dict[str, Any]:
    user = dict(spec.routing)
    upstreams = dict(user.pop("upstreams", {}) or {})
    aliases = dict(user.pop("aliases", {}) or {})
    if layout.engine == "vllm":
        engine: dict[str, Any] = {"kind": "local", "device": "gpu", "model": spec.model.name,
                                  "base_url": f"http://{names.engine}.{names.namespace}.svc:{ENGINE_PORT}/v1"}
        if spec.security.engine_key_secret:
            engine["api_key_env"] = ENGINE_KEY_ENV
        upstreams = {ENGINE_UPSTREAM: engine, **upstreams}
        aliases.setdefault(spec.model.name, [ENGINE_UPSTREAM])
    return {**user, "upstreams": upstreams, "aliases": aliases} if upstreams or aliases or user else {}


def _model_entry(spec: LLMDeploymentSpec) -> dict[str, Any]:
    source = spec.model.source
    if needs_import(spec):
        source = spec.model.name  # a store id under DEEPLOCAL_MODELS_DIR, filled by the init step
    return {"source": source, "id": spec.model.name, "backend": "llamacpp"}


def gateway_settings(spec: LLMDeploymentSpec, names: Names, layout: EngineLayout) -> dict[str, Any]:
    """The deeplocal.yaml document (a dict) the gateway pods read."""
    server: dict[str, Any] = {"host": "0.0.0.0", "port": GATEWAY_PORT}
    if spec.security.tls_secret:
        server |= {"tls_cert": f"{TLS_DIR}/tls.crt", "tls_key": f"{TLS_DIR}/tls.key"}
    doc: dict[str, Any] = {
        "server": server,
        "gateway": {"auth": spec.security.auth},
        "audit": {"enabled": True, "store_bodies": spec.security.store_bodies},
        "metrics": {"enabled": True, "host": "0.0.0.0", "port": METRICS_PORT},
        "data_dir": DATA_DIR,
        "log_json": True,
    }
    if layout.engine == "llamacpp":
        doc["engine"] = dict(layout.llamacpp)
        doc["models"] = [_model_entry(spec)]
    else:
        doc["models"] = []
    routing = _routing(spec, names, layout)
    if routing:
        doc["routing"] = routing
    doc = _deep_merge(dict(spec.settings), doc)
    check_sections(doc)
    return doc


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_merge(out[key], value) if both else value
    return out


def check_sections(doc: dict[str, Any]) -> None:
    """Validate the document with deeplocal's own `Settings`, as `deeplocal serve` will at start: a bad
    `routing` in the spec is reported here instead of crash-looping the gateway."""
    from deeplocal.config import Settings

    try:
        Settings(**doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"deeplocal.yaml {where}: {msg}")
        raise DeploySpecError(problems) from None


def render_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def config_hash(text: str) -> str:
    """Put on the pod template so that a changed config rolls the pods."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def models_env() -> dict[str, str]:
    return {"name": "DEEPLOCAL_MODELS_DIR", "value": MODELS_MOUNT}
