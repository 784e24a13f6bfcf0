"""Replicas on one machine: one supervised child per GPU group, chosen per request by load."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

import httpx

from deeplocal.engine.errors import BackendUnavailable, ModelNotFound
from deeplocal.engine.remote import RemoteBackend, RemoteTimeouts
from deeplocal.engine.types import BackendStats, Chunk, GenerationRequest
from deeplocal.engine.vllm.args import ServeTarget, build_serve_argv
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.engine.vllm.stats import MetricsTracker
from deeplocal.engine.vllm.supervisor import SupervisorPolicy, VllmSupervisor

# deeplocal runs offline and sends nothing home; vLLM's usage reporting is off unless `env` says so.
NO_TELEMETRY = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def device_groups(s: VllmSettings) -> list[str | None]:
    """`CUDA_VISIBLE_DEVICES` per replica: consecutive slices of `s.gpus` (default 0..n-1).

    None for one replica with no explicit `gpus`: the child then sees what this process sees.
    """
    if s.gpus is None and s.replicas == 1:
        return [None]
    per = s.devices_per_replica
    ids = list(s.gpus) if s.gpus is not None else list(range(s.replicas * per))
    return [",".join(str(i) for i in ids[r * per:(r + 1) * per]) for r in range(s.replicas)]


def free_loopback_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    ready: bool
    in_flight: int          # our requests not yet finished (immediate)
    queued: int             # running + waiting as vLLM last reported (up to one scrape old)
    kv_usage: float


def pick_replica(loads: Sequence[ReplicaLoad], *, turn: int = 0) -> int | None:
    """Index of the ready replica with the least load; ties go round-robin from `turn`. None: none ready."""
    best: tuple[int, float, int] | None = None
    best_index: int | None = None
    n = len(loads)
    for offset in range(n):
        i = (turn + offset) % n
        load = loads[i]
        if not load.ready:
            continue
        key = (max(load.in_flight, load.queued), load.kv_usage, offset)
        if best is None or key < best:
            best, best_index = key, i
    return best_index


class Replica:
    """One child: its supervisor, an OpenAI client per served name (base + LoRA adapters), its stats."""

    def __init__(self, index: int, s: VllmSettings, *, model: str, served_name: str, api_key: str,
                 devices: str | None) -> None:
        port = s.port + index if s.port else free_loopback_port(s.host)
        host = f"[{s.host}]" if ":" in s.host else s.host
        self.index = index
        self.root_url = f"http://{host}:{port}"
        self.devices = devices
        env = {**NO_TELEMETRY, **s.env, "VLLM_API_KEY": api_key}
        if devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = devices
        argv = build_serve_argv(s, ServeTarget(model=model, served_name=served_name, port=port))
        self.supervisor = VllmSupervisor(f"{served_name}#{index}", argv, base_url=self.root_url, env=env,
                                         policy=SupervisorPolicy.from_settings(s))
        timeouts = RemoteTimeouts(first_token_s=s.first_token_timeout_s, idle_s=s.idle_timeout_s,
                                  total_s=s.request_timeout_s)
        names = [served_name, *(a.name for a in s.lora_adapters)]
        self.served_name = served_name
        self.remotes = {name: RemoteBackend(f"vllm:{name}#{index}", f"{self.root_url}/v1", model=name,
                                            api_key=api_key, timeouts=timeouts) for name in names}
        self.tracker = MetricsTracker()
        self.in_flight = 0          # our requests not yet finished
        self.completed = 0
        self._interval = s.metrics_interval_s
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.supervisor.start()
        for remote in self.remotes.values():
            await remote.start()
        self._poller = asyncio.create_task(self._poll(), name=f"vllm-metrics-{self.index}")

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for remote in self.remotes.values():
            await remote.stop()
        await self.supervisor.stop()
        self.tracker.mark(healthy=False)

    def remote_for(self, req: GenerationRequest) -> RemoteBackend:
        name = req.lora or (req.model if req.model in self.remotes else self.served_name)
        if name not in self.remotes:
            known = ", ".join(sorted(n for n in self.remotes if n != self.served_name)) or "none"
            raise ModelNotFound(f"LoRA adapter {name!r} is not configured (configured: {known})",
                                param="lora")
        if not self.supervisor.ready:
            raise self.supervisor.unavailable()
        return self.remotes[name]

    async def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream from this replica, counting what is in flight (for routing) and what completed."""
        remote = self.remote_for(req)
        self.in_flight += 1
        try:
            async for chunk in remote.generate(req):
                yield chunk
            self.completed += 1
        finally:
            self.in_flight -= 1

    def load(self) -> ReplicaLoad:
        stats = self.tracker.latest
        return ReplicaLoad(ready=self.supervisor.ready, in_flight=self.in_flight,
                           queued=stats.running + stats.waiting, kv_usage=stats.kv_usage)

    def stats(self) -> BackendStats:
        return replace(self.tracker.latest, healthy=self.supervisor.ready)

    async def scrape(self, client: httpx.AsyncClient) -> BackendStats:
        """Read /metrics once; on failure keep the last levels and mark unhealthy."""
        try:
            response = await client.get(f"{self.root_url}/metrics")
            response.raise_for_status()
        except httpx.HTTPError:
            return self.tracker.mark(healthy=False)
        return self.tracker.update(response.text, now=time.monotonic(), healthy=self.supervisor.ready)

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False) as client:
            while True:
                await self.scrape(client)
                await asyncio.sleep(self._interval)


def sum_stats(parts: Sequence[BackendStats]) -> BackendStats:
    """Replicas seen as one backend: levels and rates add up; healthy if any replica is."""
    if not parts:
        return BackendStats(healthy=False)
    fields = ("waiting", "running", "kv_used", "kv_total", "prefix_hit_tokens", "prefix_query_tokens",
              "preemptions", "prompt_tokens_total", "generation_tokens_total", "prompt_tokens_per_s",
              "generation_tokens_per_s")
    totals = {f: sum(getattr(p, f) for p in parts) for f in fields}
    return BackendStats(**totals, healthy=any(p.healthy for p in parts))


def no_replica_ready(replicas: Sequence[Replica]) -> BackendUnavailable:
    """The error for a request that found no ready replica (the first replica's state explains it)."""
    if not replicas:
        return BackendUnavailable("no vLLM replica is running")
    return replicas[0].supervisor.unavailable()
