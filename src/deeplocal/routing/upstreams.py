"""The upstream registry: each configured upstream with its backends (one per upstream model name),
its circuit breaker, health and the numbers routing reads."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from deeplocal.engine.backend import Backend
from deeplocal.engine.remote import RemoteTimeouts
from deeplocal.engine.types import BackendStats, Usage
from deeplocal.routing.breaker import CircuitBreaker
from deeplocal.routing.config import AliasTarget, PriceSettings, RoutingSettings, UpstreamSettings

log = logging.getLogger(__name__)

RemoteFactory = Callable[..., Backend]   # called like RemoteBackend(name, base_url, model=..., ...)
_EWMA_ALPHA = 0.3


def cost_usd(usage: Usage, price: PriceSettings) -> float:
    """What a generation cost at this upstream's prices (cached prompt tokens at the cached rate)."""
    cached_rate = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    cached = min(usage.cached_tokens, usage.prompt_tokens)   # an upstream's odd report never costs < 0
    return ((usage.prompt_tokens - cached) * price.input_per_mtok + cached * cached_rate
            + usage.completion_tokens * price.output_per_mtok) / 1e6


@dataclass(frozen=True, slots=True)
class UpstreamState:
    """A snapshot for health endpoints and metrics."""

    name: str
    kind: str
    breaker: str
    healthy: bool
    disabled: str | None
    in_flight: int
    waiting: int
    requests: int
    failures: int
    breaker_opened: int
    ttft_ewma_s: float | None


@dataclass
class Upstream:
    name: str
    settings: UpstreamSettings
    breaker: CircuitBreaker
    backends: dict[str, Backend] = field(default_factory=dict)
    healthy: bool = True
    health_reason: str = ""
    disabled: str | None = None        # why it cannot be used at all (missing key, engine not served)
    ttft_ewma_s: float | None = None
    requests: int = 0
    failures: int = 0

    @property
    def remote(self) -> bool:
        return self.settings.kind == "remote"

    def stats(self) -> BackendStats:
        """Summed over this upstream's backends."""
        waiting = running = 0
        healthy = True
        for backend in self.backends.values():
            s = backend.stats()
            waiting += s.waiting
            running += s.running
            healthy = healthy and s.healthy
        return BackendStats(waiting=waiting, running=running, healthy=healthy)

    def observe_ttft(self, seconds: float) -> None:
        prev = self.ttft_ewma_s
        self.ttft_ewma_s = seconds if prev is None else prev + _EWMA_ALPHA * (seconds - prev)

    def state(self) -> UpstreamState:
        s = self.stats()
        return UpstreamState(
            name=self.name, kind=self.settings.kind, breaker=self.breaker.state.value,
            healthy=self.healthy, disabled=self.disabled, in_flight=s.running, waiting=s.waiting,
            requests=self.requests, failures=self.failures, breaker_opened=self.breaker.opened_count,
            ttft_ewma_s=self.ttft_ewma_s,
        )


def target_model(alias: str, target: AliasTarget, upstream: UpstreamSettings) -> str:
    return target.model or upstream.model or upstream.engine or alias


class UpstreamRegistry:
    def __init__(
        self,
        config: RoutingSettings,
        *,
        local_backends: Mapping[str, Backend],
        remote_factory: RemoteFactory,
        clock: Callable[[], float],
        env: Mapping[str, str],
    ):
        self.config = config
        self._local = local_backends
        self._factory = remote_factory
        self._env = env
        b = config.policy.breaker
        self.upstreams: dict[str, Upstream] = {
            name: Upstream(name, s, CircuitBreaker(failure_threshold=b.failure_threshold, open_s=b.open_s,
                                                   clock=clock))
            for name, s in config.upstreams.items()
        }
        engines = {s.engine for s in config.upstreams.values()}
        for model_id in local_backends:  # a served model nobody configured: plain local serving
            if model_id not in engines:
                name = model_id if model_id not in self.upstreams else f"local:{model_id}"
                self.upstreams[name] = Upstream(
                    name, UpstreamSettings(kind="local", engine=model_id),
                    CircuitBreaker(failure_threshold=b.failure_threshold, open_s=b.open_s, clock=clock))
        self._owned: list[Backend] = []
        self._bind_engines()

    def __getitem__(self, name: str) -> Upstream:
        return self.upstreams[name]

    def _bind_engines(self) -> None:
        """In-process engines are bound at construction (no I/O): usable before start()."""
        for name, up in self.upstreams.items():
            engine = up.settings.engine
            if engine is None:
                continue
            backend = self._local.get(engine)
            if backend is None:
                up.disabled = f"in-process model {engine!r} is not served here"
                log.warning("upstream %s disabled: %s", name, up.disabled)
            else:
                up.backends[engine] = backend

    async def start(self) -> None:
        """Build and start one HTTP backend per (URL upstream, upstream model) the aliases use."""
        wanted: dict[str, set[str]] = {name: set() for name in self.upstreams}
        for alias, targets in self.config.aliases.items():
            for t in targets:
                wanted[t.upstream].add(target_model(alias, t, self.config.upstreams[t.upstream]))
        for name, up in self.upstreams.items():
            s = up.settings
            if s.base_url is None or up.backends:
                continue
            api_key = None
            if s.api_key_env:
                api_key = self._env.get(s.api_key_env)
                if not api_key:
                    up.disabled = f"its API key variable {s.api_key_env} is not set"
                    log.warning("upstream %s disabled: %s", name, up.disabled)
                    continue
            t = s.timeouts
            timeouts = RemoteTimeouts(connect_s=t.connect_s, first_token_s=t.first_token_s,
                                      idle_s=t.idle_s, total_s=t.total_s)
            for model in sorted(wanted[name] or {s.model or name}):
                # coalesce: the API re-frames every chunk anyway, so events that arrived together go
                # on as one (fewer frames and writes per streamed answer).
                backend = self._factory(name, s.base_url, model=model, api_key=api_key, timeouts=timeouts,
                                        headers=dict(s.headers) or None, coalesce=True)
                await backend.start()
                up.backends[model] = backend
                self._owned.append(backend)

    async def stop(self) -> None:
        owned, self._owned = self._owned, []
        for backend in owned:
            await backend.stop()
        for up in self.upstreams.values():
            if up.settings.engine is None:
                up.backends.clear()

    def states(self) -> list[UpstreamState]:
        return [up.state() for up in self.upstreams.values()]
