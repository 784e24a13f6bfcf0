"""Model storage: a PVC (or a node's hostPath) and the init step that imports the model into it."""

from __future__ import annotations

import shlex
from typing import Any

from deeplocal.deploy.layout import MODELS_MOUNT, EngineLayout, needs_import
from deeplocal.deploy.objects import Manifest, container_security, meta, names_of
from deeplocal.deploy.spec import LLMDeployment


def shared_by_many_pods(d: LLMDeployment, layout: EngineLayout) -> bool:
    """Several pods (replicas, autoscaling or a multi-node replica) may sit on different nodes."""
    s = d.spec
    return s.replicas > 1 or s.autoscaling.enabled or layout.nodes > 1


def models_claim(d: LLMDeployment, layout: EngineLayout) -> Manifest | None:
    st = d.spec.storage
    if st.host_path or st.existing_claim:
        return None
    mode = "ReadWriteMany" if shared_by_many_pods(d, layout) else "ReadWriteOnce"
    spec: dict[str, Any] = {"accessModes": [mode], "resources": {"requests": {"storage": st.size}}}
    if st.storage_class_name:
        spec["storageClassName"] = st.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": meta(d, names_of(d).models, "storage"), "spec": spec}


def models_volume(d: LLMDeployment) -> dict[str, Any]:
    st = d.spec.storage
    if st.host_path:
        return {"name": "models", "hostPath": {"path": st.host_path, "type": "DirectoryOrCreate"}}
    return {"name": "models", "persistentVolumeClaim": {"claimName": st.existing_claim or names_of(d).models}}


def import_command(d: LLMDeployment) -> str:
    """Idempotent: a model already in the store (same id) is kept; otherwise it is pulled and verified."""
    m = d.spec.model
    pull = ["deeplocal", "models", "pull", m.source, "--id", m.name]
    if d.spec.engine == "llamacpp":
        pull += ["--include", "*.gguf"]
    info = ["deeplocal", "models", "info", m.name]
    return f"{shlex.join(info)} >/dev/null 2>&1 || {shlex.join(pull)}"


def import_init_container(d: LLMDeployment) -> dict[str, Any] | None:
    if not needs_import(d.spec):
        return None
    return {
        "name": "import-model", "image": d.spec.images.cpu, "imagePullPolicy": d.spec.images.pull_policy,
        "command": ["/bin/sh", "-c", import_command(d)],
        "env": [{"name": "DEEPLOCAL_MODELS_DIR", "value": MODELS_MOUNT}, {"name": "HOME", "value": "/tmp"}],
        "volumeMounts": [{"name": "models", "mountPath": MODELS_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "securityContext": container_security(),
    }
