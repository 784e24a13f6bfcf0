"""The kopf entry point's loop against a recording stand-in for the Kubernetes API (no cluster here):
everything or nothing is applied, stale objects are deleted, readiness is read back into the status."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("kopf")   # the operator extra; the entry point imports it

ROOT = Path(__file__).resolve().parents[3]


def load_operator():
    spec = importlib.util.spec_from_file_location("deeplocal_operator_main", ROOT / "deploy/operator/operator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeResource:
    def __init__(self, api: FakeApi, key: tuple[str, str]):
        self.api, self.key = api, key

    def get(self, *, name, namespace):
        obj = self.api.objects.get((*self.key, namespace, name))
        if obj is None:
            raise LookupError("404")
        return obj

    def server_side_apply(self, *, body, name, namespace, field_manager, force_conflicts):
        assert field_manager == "deeplocal-operator" and force_conflicts
        self.api.calls.append(("apply", *self.key, namespace, name))
        self.api.objects[(*self.key, namespace, name)] = {**body, "status": {}}

    def delete(self, *, name, namespace):
        self.api.calls.append(("delete", *self.key, namespace, name))
        del self.api.objects[(*self.key, namespace, name)]


class FakeApi:
    def __init__(self):
        self.objects: dict[tuple, dict] = {}
        self.calls: list[tuple] = []
        self.resources = self

    def get(self, *, api_version, kind):   # client.resources.get(...)
        return FakeResource(self, (api_version, kind))


def cr(**spec):
    base = {"model": {"name": "smol", "source": "smollm2-135m"}, "engine": "llamacpp",
            "security": {"databaseSecret": "db"}}
    return {"apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment",
            "metadata": {"name": "s", "namespace": "llm", "uid": "u", "generation": 1}, "spec": {**base, **spec}}


def test_apply_prune_and_status():
    op = load_operator()
    api, events = FakeApi(), []
    first = op.run_once(api, cr(autoscaling={"enabled": True}), now="t0", emit=events.append)
    applied = [c for c in api.calls if c[0] == "apply"]
    assert len(applied) == len(first.manifests) and ("apply", "autoscaling/v2", "HorizontalPodAutoscaler",
                                                     "llm", "s-gateway") in applied
    assert first.status["phase"] == "Progressing"

    api.objects[("apps/v1", "Deployment", "llm", "s-gateway")]["status"] = {"readyReplicas": 1}
    api.calls.clear()
    second = op.run_once(api, {**cr(), "status": first.status}, now="t1", emit=events.append)
    assert ("delete", "autoscaling/v2", "HorizontalPodAutoscaler", "llm", "s-gateway") in api.calls
    assert second.status["phase"] == "Serving"
    assert any(e.reason == "ServingTrue" for e in events)


def test_invalid_spec_touches_nothing():
    op = load_operator()
    api, events = FakeApi(), []
    result = op.run_once(api, cr(security={"auth": False}), now="t0", emit=events.append)
    assert api.calls == [] and not result.ok
    assert events and events[0].type == "Warning" and "auth" in events[0].message
