"""The operator's reconcile function, pure: plan-auto, scale-up, model change, bad specs, status."""

from __future__ import annotations

import copy

from deeplocal.deploy.reconcile import Observed, reconcile

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def cr(**spec) -> dict:
    base = {"model": {"name": "r1-7b", "source": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                      "architecture": "deepseek-r1-distill-qwen-7b"},
            "plan": "auto", "gpus": {"type": "l40s"}, "maxContext": 8192, "concurrency": 8}
    base.update(spec)
    return {"apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment",
            "metadata": {"name": "r1", "namespace": "llm", "uid": "u1", "generation": 1}, "spec": base}


def by_kind(result, kind, name=None):
    return [m for m in result.manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


def engine_args(result) -> list[str]:
    return by_kind(result, "Deployment", "r1-engine")[0]["spec"]["template"]["spec"]["containers"][0]["command"]


def test_plan_auto_uses_the_planner_layout():
    from deeplocal.planner.gpus import gpu_from_name
    from deeplocal.planner.plan import PlanRequest, plan
    from deeplocal.planner.specs import model_from_name

    result = reconcile(cr(), now=NOW)
    expected = plan(PlanRequest(model=model_from_name("deepseek-r1-distill-qwen-7b"), context=8192, concurrency=8,
                                devices=(gpu_from_name("l40s"),), max_devices_per_node=8)).options[0]
    args = engine_args(result)
    assert args[args.index("--max-num-seqs") + 1] == dict(expected.settings.vllm_flags)["--max-num-seqs"]
    assert result.status["layout"]["gpusPerPod"] == expected.fit.n_devices
    planned = next(c for c in result.status["conditions"] if c["type"] == "Planned")
    assert planned["status"] == "True" and "l40s" in planned["message"]


def test_plan_auto_that_cannot_fit_is_a_clear_condition_and_applies_nothing():
    result = reconcile(cr(model={"name": "deepseek-v3", "source": "deepseek-ai/DeepSeek-V3"},
                          gpus={"type": "rtx-4090", "perNode": 1}, maxContext=131072), now=NOW)
    assert result.manifests == () and not result.ok
    planned = next(c for c in result.status["conditions"] if c["type"] == "Planned")
    assert planned["status"] == "False" and "no layout" in planned["message"]
    assert result.events[0].type == "Warning"


def test_scale_up_changes_only_replicas_and_deletes_nothing():
    first = reconcile(cr(replicas=1), now=NOW)
    second = reconcile({**cr(replicas=3), "status": first.status}, now=LATER)
    assert by_kind(second, "Deployment", "r1-engine")[0]["spec"]["replicas"] == 3
    assert second.delete == ()
    a = by_kind(first, "Deployment", "r1-engine")[0]["spec"]["template"]
    b = by_kind(second, "Deployment", "r1-engine")[0]["spec"]["template"]
    assert a == b   # same pod template: scaling does not restart running replicas


def test_model_change_rolls_engine_and_gateway_config():
    first = reconcile(cr(), now=NOW)
    second = reconcile(cr(model={"name": "r1-14b", "source": "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
                                 "architecture": "deepseek-r1-distill-qwen-14b"}), now=LATER)
    assert "/models/r1-14b" in engine_args(second) and "/models/r1-7b" in engine_args(first)
    hash_of = [by_kind(r, "Deployment", "r1-gateway")[0]["spec"]["template"]["metadata"]["annotations"]
               ["deeplocal.dev/config-hash"] for r in (first, second)]
    assert hash_of[0] != hash_of[1]   # the ConfigMap changed: gateway pods roll
    strategy = by_kind(second, "Deployment", "r1-engine")[0]["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_turning_autoscaling_off_deletes_the_autoscaler():
    on = reconcile(cr(autoscaling={"enabled": True}), now=NOW)
    assert by_kind(on, "HorizontalPodAutoscaler")
    assert "replicas" not in by_kind(on, "Deployment", "r1-engine")[0]["spec"]   # the HPA owns it
    off = reconcile({**cr(), "status": on.status}, now=LATER)
    assert off.delete == ("autoscaling/v2/HorizontalPodAutoscaler/llm/r1-engine",)


def test_bad_specs_apply_nothing_and_say_why():
    cases = {
        "auth must be true": cr(security={"auth": False}),
        "shared database": cr(gateway={"replicas": 3}),
        "spec.engine": cr(engine="tgi"),
        "spec.gpus is required": cr(plan="manual", gpus=None),
        "unknown field": cr(gpu={"count": 1}),
        "auditKeySecret": cr(security={"storeBodies": True}),
        "deeplocal.yaml routing": cr(routing={"upstreams": {"x": {"kind": "remote"}}}),
        "spec.model.name": cr(model={"name": "R1 7B", "source": "org/r1"}),
        "autoscaling llamacpp": cr(engine="llamacpp", model={"name": "s", "source": "smollm2-135m"},
                                   autoscaling={"enabled": True}),
    }
    for needle, doc in cases.items():
        if doc["spec"].get("gpus", 1) is None:
            del doc["spec"]["gpus"]
        result = reconcile(doc, now=NOW)
        assert result.manifests == () and result.delete == (), needle
        conds = {c["type"]: c for c in result.status["conditions"]}
        assert conds["Planned"]["status"] == "False" and needle in conds["Planned"]["message"], needle
        assert conds["Degraded"]["status"] == "True"


def test_invalid_update_keeps_the_last_applied_objects():
    good = reconcile(cr(), now=NOW)
    bad = reconcile({**cr(security={"auth": False}), "status": good.status}, now=LATER)
    assert bad.manifests == () and bad.delete == ()
    assert bad.status["appliedObjects"] == good.status["appliedObjects"]


def test_status_follows_observed_readiness_and_keeps_transition_times():
    start = reconcile(cr(replicas=2), Observed(), now=NOW)
    conds = {c["type"]: c["status"] for c in start.status["conditions"]}
    assert conds == {"Planned": "True", "ModelReady": "False", "Serving": "False", "Degraded": "False"}
    assert start.status["phase"] == "Progressing"
    partial = reconcile({**cr(replicas=2), "status": start.status}, Observed(gateway_ready=1, engine_ready=1),
                        now=LATER)
    conds = {c["type"]: c for c in partial.status["conditions"]}
    assert conds["Serving"]["status"] == "True" and conds["Degraded"]["status"] == "True"
    assert "engine 1/2 ready" in conds["Degraded"]["message"]
    assert conds["Planned"]["lastTransitionTime"] == NOW and conds["Serving"]["lastTransitionTime"] == LATER
    assert {e.reason for e in partial.events} >= {"ServingTrue", "DegradedTrue"}
    full = reconcile({**cr(replicas=2), "status": partial.status}, Observed(gateway_ready=1, engine_ready=2),
                     now=LATER)
    assert full.status["phase"] == "Serving"
    assert full.status["endpoint"] == "http://r1-gateway.llm.svc:8000/v1"


def test_reconcile_is_pure():
    doc = cr()
    snapshot = copy.deepcopy(doc)
    assert reconcile(doc, now=NOW) == reconcile(doc, now=NOW)
    assert doc == snapshot


def test_model_storage_is_shared_when_pods_may_land_on_several_nodes():
    one = reconcile(cr(), now=NOW)
    many = reconcile(cr(replicas=2), now=NOW)
    assert by_kind(one, "PersistentVolumeClaim", "r1-models")[0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert by_kind(many, "PersistentVolumeClaim", "r1-models")[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    kept = reconcile(cr(storage={"existingClaim": "weights"}), now=NOW)
    assert not by_kind(kept, "PersistentVolumeClaim", "r1-models")
    pod = by_kind(kept, "Deployment", "r1-engine")[0]["spec"]["template"]["spec"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "weights"}} in pod["volumes"]
    assert pod["initContainers"][0]["command"][2] == (
        "deeplocal models info r1-7b >/dev/null 2>&1 || deeplocal models pull "
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --id r1-7b")


def test_extra_settings_merge_under_the_generated_ones():
    import yaml

    result = reconcile(cr(settings={"gateway": {"auth": False, "key_cache_ttl_s": 2},
                                    "server": {"host": "127.0.0.1", "request_timeout_s": 120},
                                    "audit": {"retention_days": 90}}), now=NOW)
    cfg = yaml.safe_load(by_kind(result, "ConfigMap")[0]["data"]["deeplocal.yaml"])
    assert cfg["gateway"] == {"auth": True, "key_cache_ttl_s": 2}          # auth cannot be turned off
    assert cfg["server"]["host"] == "0.0.0.0" and cfg["server"]["request_timeout_s"] == 120
    assert cfg["audit"]["retention_days"] == 90
    bad = reconcile(cr(settings={"pii": {"no_such_key": 1}}), now=NOW)
    assert not bad.ok and "deeplocal.yaml pii.no_such_key: unknown key" in bad.status["conditions"][0]["message"]
