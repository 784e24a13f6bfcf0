"""Replica devices, load-based choice, restart backoff and the Ray multi-node layout."""

from __future__ import annotations

import pytest

from deeplocal.engine.types import BackendStats
from deeplocal.engine.vllm.args import VllmSettingsError
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.engine.vllm.ray import ray_layout
from deeplocal.engine.vllm.replicas import ReplicaLoad, device_groups, pick_replica, sum_stats
from deeplocal.engine.vllm.supervisor import SupervisorPolicy


def test_one_replica_without_gpus_inherits_the_environment():
    assert device_groups(VllmSettings()) == [None]


def test_replicas_get_consecutive_device_slices():
    assert device_groups(VllmSettings(replicas=2, tensor_parallel_size=2)) == ["0,1", "2,3"]
    assert device_groups(VllmSettings(replicas=3, gpus=(5, 6, 7))) == ["5", "6", "7"]
    assert device_groups(VllmSettings(pipeline_parallel_size=2, tensor_parallel_size=2, gpus=(3, 2, 1, 0))) \
        == ["3,2,1,0"]


def ready(in_flight=0, queued=0, kv=0.0) -> ReplicaLoad:
    return ReplicaLoad(True, in_flight, queued, kv)


def test_pick_prefers_least_loaded_then_lower_kv_usage():
    assert pick_replica([ready(3), ready(1), ready(2)]) == 1
    assert pick_replica([ready(0, queued=5), ready(2)]) == 1          # vLLM's queue counts too
    assert pick_replica([ready(1, kv=0.9), ready(1, kv=0.1)]) == 1


def test_pick_skips_replicas_that_are_not_ready_and_none_when_all_down():
    down = ReplicaLoad(False, 0, 0, 0.0)
    assert pick_replica([down, ready(9)]) == 1
    assert pick_replica([down, down]) is None
    assert pick_replica([]) is None


def test_ties_rotate_with_the_turn():
    loads = [ready(), ready(), ready()]
    assert [pick_replica(loads, turn=t) for t in range(4)] == [0, 1, 2, 0]


def test_sum_stats_adds_levels_and_is_healthy_if_any_replica_is():
    a = BackendStats(running=2, waiting=1, kv_used=10, kv_total=100, healthy=True)
    b = BackendStats(running=1, kv_used=30, kv_total=100, healthy=False)
    total = sum_stats([a, b])
    assert (total.running, total.waiting, total.kv_usage, total.healthy) == (3, 1, 0.2, True)
    assert not sum_stats([]).healthy


def test_backoff_doubles_and_is_capped():
    policy = SupervisorPolicy(backoff_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_ray_layout_puts_pipeline_stages_across_nodes_and_tensor_parallel_within():
    s = VllmSettings(nodes=2, tensor_parallel_size=8, pipeline_parallel_size=2)
    layout = ray_layout(s, head_ip="10.0.0.1", gpus_per_node=8, model="/m/ds", served_name="ds",
                        nccl_ifname="eth1")
    head, worker = layout.nodes
    assert head.role == "head" and head.start[:4] == ("ray", "start", "--head", "--port=6379")
    assert worker.start[:3] == ("ray", "start", "--address=10.0.0.1:6379")
    assert (head.pipeline_stages, worker.pipeline_stages) == ((0,), (1,))
    assert head.env["VLLM_HOST_IP"] == "10.0.0.1" and worker.env["VLLM_HOST_IP"] == "${NODE_IP}"
    assert worker.env["NCCL_SOCKET_IFNAME"] == "eth1" == worker.env["GLOO_SOCKET_IFNAME"]
    argv = list(layout.serve_argv)
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "8"
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "2"
    assert layout.to_dict()["nodes"][1]["gpus"] == 8


def test_ray_layout_refuses_one_node_and_too_few_gpus_per_node():
    with pytest.raises(VllmSettingsError, match="nodes >= 2"):
        ray_layout(VllmSettings(), head_ip="h", gpus_per_node=8, model="m", served_name="m")
    s = VllmSettings(nodes=2, tensor_parallel_size=8, pipeline_parallel_size=4)
    with pytest.raises(VllmSettingsError, match="needs 16 GPU"):
        ray_layout(s, head_ip="h", gpus_per_node=8, model="m", served_name="m")


def test_child_environment_drops_deeplocals_secrets_and_unbuffers_output():
    from deeplocal.engine.vllm.process import child_environment

    env = child_environment({"PATH": "/bin", "DEEPLOCAL_AUDIT_KEY": "s3cret", "HF_HOME": "/hf"},
                            {"CUDA_VISIBLE_DEVICES": "1"})
    assert env == {"PATH": "/bin", "HF_HOME": "/hf", "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "1"}
