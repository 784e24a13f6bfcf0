"""The multi-node layout: a Ray cluster (one head, N-1 workers), pipeline stages across nodes,
tensor parallel within each node. Pure: renders commands and env for docs, `deploy` and operators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deeplocal.engine.vllm.args import ServeTarget, VllmSettingsError, build_serve_argv
from deeplocal.engine.vllm.config import VllmSettings

RAY_PORT = 6379


@dataclass(frozen=True, slots=True)
class RayNode:
    role: str                          # "head" or "worker"
    rank: int                          # 0 for the head
    gpus: int
    pipeline_stages: tuple[int, ...]   # the PP ranks this node holds (vLLM assigns; this is the plan)
    start: tuple[str, ...]             # the `ray start` command for this node
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RayLayout:
    head_address: str
    nodes: tuple[RayNode, ...]
    serve_argv: tuple[str, ...]        # run on the head (by deeplocal's supervisor) once all joined
    tensor_parallel_size: int
    pipeline_parallel_size: int
    check: tuple[str, ...] = ("ray", "status")

    def to_dict(self) -> dict[str, Any]:
        return {
            "head_address": self.head_address,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "serve_argv": list(self.serve_argv),
            "check": list(self.check),
            "nodes": [{"role": n.role, "rank": n.rank, "gpus": n.gpus,
                       "pipeline_stages": list(n.pipeline_stages), "start": list(n.start), "env": n.env}
                      for n in self.nodes],
        }


def ray_layout(s: VllmSettings, *, head_ip: str, gpus_per_node: int, model: str, served_name: str,
               port: int = 8001, nccl_ifname: str | None = None, ray_port: int = RAY_PORT) -> RayLayout:
    """Render the cluster for `s.nodes` nodes with `gpus_per_node` GPUs each.

    Each node sets `VLLM_HOST_IP` to its own address (the worker IPs are left as placeholders for
    the deploy layer to fill: `${NODE_IP}`), and the same NCCL/Gloo interface when one is named.
    """
    if s.nodes < 2:
        raise VllmSettingsError("a Ray layout needs vllm.nodes >= 2; one node runs without Ray")
    if s.devices_per_replica > gpus_per_node:
        raise VllmSettingsError(
            f"each node needs {s.devices_per_replica} GPU(s) (tensor_parallel_size "
            f"{s.tensor_parallel_size} x {s.pipeline_parallel_size // s.nodes} stage(s) per node) but has "
            f"{gpus_per_node}")
    common: dict[str, str] = {}
    if nccl_ifname:
        common |= {"NCCL_SOCKET_IFNAME": nccl_ifname, "GLOO_SOCKET_IFNAME": nccl_ifname}
    stages_per_node = s.pipeline_parallel_size // s.nodes
    address = f"{head_ip}:{ray_port}"
    nodes = []
    for rank in range(s.nodes):
        head = rank == 0
        start = (("ray", "start", "--head", f"--port={ray_port}") if head
                 else ("ray", "start", f"--address={address}"))
        start += (f"--num-gpus={gpus_per_node}", "--block")
        ip = head_ip if head else "${NODE_IP}"
        stages = tuple(range(rank * stages_per_node, (rank + 1) * stages_per_node))
        nodes.append(RayNode("head" if head else "worker", rank, gpus_per_node, stages, start,
                             {**common, "VLLM_HOST_IP": ip}))
    argv = build_serve_argv(s, ServeTarget(model=model, served_name=served_name, port=port))
    return RayLayout(address, tuple(nodes), tuple(argv), s.tensor_parallel_size, s.pipeline_parallel_size)
