"""The router: public model name -> an upstream, by data class, load, health and breakers; retries and
failover until the first chunk arrives, then a RoutedStream the API streams to the client."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping

from deeplocal.engine.backend import Backend
from deeplocal.engine.errors import EngineError, InvalidRequest, ModelNotFound, Overloaded, UpstreamError
from deeplocal.engine.remote import RemoteBackend, UpstreamTimeout
from deeplocal.engine.types import GenerationRequest
from deeplocal.routing import policy
from deeplocal.routing.config import DATA_CLASSES, AliasTarget, DataClass, RoutingSettings
from deeplocal.routing.errors import NoAllowedUpstream, NoUpstreamAvailable
from deeplocal.routing.health import HealthProber
from deeplocal.routing.stream import Pseudonymizer, RoutedStream, close_quietly, pseudonymize_request
from deeplocal.routing.upstreams import RemoteFactory, Upstream, UpstreamRegistry, UpstreamState, target_model

log = logging.getLogger(__name__)


class Router:
    def __init__(
        self,
        config: RoutingSettings,
        *,
        local_backends: Mapping[str, Backend],
        remote_factory: RemoteFactory = RemoteBackend,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], object] = asyncio.sleep,
    ):
        self.config = config
        self._local = local_backends
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.registry = UpstreamRegistry(config, local_backends=local_backends, remote_factory=remote_factory,
                                         clock=clock, env=os.environ if env is None else env)
        self.health = HealthProber(self.registry, config.policy.health)
        self._arrivals: dict[str, deque[float]] = {}

    async def start(self) -> None:
        await self.registry.start()
        self.health.start()

    async def stop(self) -> None:
        await self.health.stop()
        await self.registry.stop()

    async def __aenter__(self) -> Router:  # noqa: PYI034
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what is served ----------------------------------------------------------------------------

    def public_models(self) -> list[str]:
        """Aliases, then in-process models that no alias name hides."""
        names = list(self.config.aliases)
        names += [m for m in self._local if m not in self.config.aliases]
        return names

    def primary_backend(self, model: str) -> Backend | None:
        """The backend an alias prefers (its first usable local one, else the first one): for token
        counting and capability checks before routing. None before start() or if none is usable."""
        try:
            targets = self._targets(model)
        except ModelNotFound:
            return None
        found = []
        for t in targets:
            up = self.registry[t.upstream]
            s = up.settings
            backend = up.backends.get(s.engine if s.engine is not None else target_model(model, t, s))
            if backend is not None and up.disabled is None:
                found.append((up.remote, backend))
        found.sort(key=lambda pair: pair[0])  # stable: local ones first, in alias order
        return found[0][1] if found else None

    def upstream_states(self) -> list[UpstreamState]:
        return self.registry.states()

    def _targets(self, model: str) -> tuple[AliasTarget, ...]:
        if model in self.config.aliases:
            return self.config.aliases[model]
        for up in self.registry.upstreams.values():  # a served model without an alias: its own upstream
            if up.settings.engine == model:
                return (AliasTarget(upstream=up.name),)
        raise ModelNotFound(f"model {model!r} is not served here; try one of {self.public_models()}",
                            param="model")

    # -- routing -----------------------------------------------------------------------------------

    async def open(
        self,
        req: GenerationRequest,
        *,
        data_class: DataClass | None = None,
        pseudonymizer_factory: Callable[[], Pseudonymizer] | None = None,
        stream: bool = True,
    ) -> RoutedStream:
        """Route and start `req`; returns once the first chunk is in hand. `data_class` None (no gateway
        classified the request) means the configured `policy.default_data_class`. `stream` False: the
        caller wants the whole answer at once, so an upstream that can answer in one body (a remote
        one) is asked to."""
        if data_class is None:
            data_class = self.config.policy.default_data_class
        if data_class not in DATA_CLASSES:
            raise InvalidRequest(f"unknown data class {data_class!r}; one of {', '.join(DATA_CLASSES)}")
        targets = self._targets(req.model)
        plan = policy.plan_route(
            [self._candidate(req, t) for t in targets], data_class=data_class,
            can_pseudonymize=pseudonymizer_factory is not None, policy=self.config.policy,
            energy=self.config.energy, arrival_rps=self._arrival_rps(req.model), rng=self._rng,
        )
        if plan.overflowed:
            log.info("overflow for %s: busy local upstreams placed behind remotes", req.model)
        retry = self.config.policy.retry
        attempts = 0
        failures: list[tuple[str, EngineError]] = []
        for cand in plan.order:
            up = self.registry[cand.upstream]
            for n in range(retry.per_upstream + 1):
                if attempts >= retry.max_attempts:
                    break
                if not up.breaker.acquire():
                    failures.append((up.name, NoUpstreamAvailable("circuit open")))
                    break
                attempts += 1
                try:
                    return await self._start(up, cand.model, req, data_class, pseudonymizer_factory, attempts,
                                             stream)
                except InvalidRequest:
                    up.breaker.release()
                    raise
                except Overloaded as exc:  # busy, not broken: try the next upstream now
                    up.breaker.release()
                    failures.append((up.name, exc))
                    break
                except EngineError as exc:
                    up.failures += 1
                    up.breaker.record_failure()
                    failures.append((up.name, exc))
                    log.warning("upstream %s failed (attempt %d): %s", up.name, attempts, exc.message)
                    if n < retry.per_upstream and attempts < retry.max_attempts and up.breaker.would_allow():
                        await self._sleep(policy.backoff_s(n, retry, self._rng, retry_after=exc.retry_after))
        raise self._exhausted(req.model, data_class, plan, failures)

    def _candidate(self, req: GenerationRequest, target: AliasTarget) -> policy.Candidate:
        up = self.registry[target.upstream]
        s = up.settings
        model = s.engine if s.engine is not None else target_model(req.model, target, s)
        stats = up.stats()
        backend = up.backends.get(model)
        return policy.Candidate(
            upstream=up.name, model=model, remote=up.remote, allowed=s.allowed, device=s.device,
            weight=s.weight, waiting=stats.waiting, running=stats.running, ttft_ewma_s=up.ttft_ewma_s,
            breaker_allows=up.breaker.would_allow(), healthy=up.healthy and stats.healthy,
            disabled=up.disabled or (None if backend else f"no backend for model {model!r}"),
            capable=backend is not None and _capable(backend, req),
        )

    async def _start(
        self,
        up: Upstream,
        model: str,
        req: GenerationRequest,
        data_class: DataClass,
        pseudonymizer_factory: Callable[[], Pseudonymizer] | None,
        attempts: int,
        stream: bool,
    ) -> RoutedStream:
        out = dataclasses.replace(req, model=model)
        restorer = None
        if up.remote and data_class == "internal":
            assert pseudonymizer_factory is not None  # the plan never picks a remote without one
            ps = pseudonymizer_factory()
            out = pseudonymize_request(out, ps)
            restorer = ps.restorer()
        t = up.settings.timeouts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + t.total_s
        started = self._clock()
        up.requests += 1
        backend = up.backends[model]
        timed_here = not getattr(backend, "enforces_timeouts", False)   # else the backend keeps them
        complete = None if stream else getattr(backend, "complete", None)
        agen = complete(out) if complete is not None else backend.generate(out)
        try:
            if timed_here:
                async with asyncio.timeout_at(min(deadline, loop.time() + t.first_token_s)):
                    first = await anext(agen)
            else:
                first = await anext(agen)
        except BaseException as exc:
            await close_quietly(agen)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(f"upstream {up.name!r}: no first token in {t.first_token_s:g}s") from exc
            if isinstance(exc, StopAsyncIteration):
                raise UpstreamError(f"upstream {up.name!r} ended without producing anything") from exc
            if isinstance(exc, EngineError | asyncio.CancelledError) or not isinstance(exc, Exception):
                if isinstance(exc, asyncio.CancelledError):
                    up.breaker.release()
                raise
            raise UpstreamError(f"upstream {up.name!r} failed: {exc!r}") from exc
        up.observe_ttft(self._clock() - started)
        up.breaker.record_success()
        return RoutedStream(upstream=up, model=model, data_class=data_class, agen=agen, first=first,
                            restorer=restorer, attempts=attempts, idle_s=t.idle_s if timed_here else None,
                            deadline=deadline)

    def _arrival_rps(self, model: str) -> float:
        window = self.config.energy.window_s
        now = self._clock()
        times = self._arrivals.setdefault(model, deque())
        times.append(now)
        while times and times[0] < now - window:
            times.popleft()
        return len(times) / window

    def _exhausted(self, model: str, data_class: str, plan: policy.RoutePlan,
                   failures: list[tuple[str, EngineError]]) -> EngineError:
        tried = "; ".join(f"{name}: {err.message}" for name, err in failures)
        skipped = "; ".join(f"{name}: {why}" for name, why in plan.skipped)
        details = "; ".join(part for part in (tried, skipped) if part) or "no upstream configured"
        if plan.refused_for_data:
            kept = ", ".join(plan.refused_for_data)
            return NoAllowedUpstream(
                f"request classified {data_class!r}: no upstream allowed to receive it could serve "
                f"{model!r}, and it was not sent to {kept} ({details})", retry_after=1.0)
        if failures and all(isinstance(err, Overloaded) for _, err in failures):
            waits = [err.retry_after for _, err in failures if err.retry_after is not None]
            return Overloaded(f"every upstream for {model!r} is busy ({details})",
                              retry_after=min(waits) if waits else 1.0)
        return NoUpstreamAvailable(f"no upstream could serve {model!r} ({details})", retry_after=1.0)


def _capable(backend: Backend, req: GenerationRequest) -> bool:
    caps = backend.capabilities
    s = req.sampling
    return ((req.messages is None or caps.chat) and (req.messages is not None or caps.completion)
            and (s.grammar is None or caps.json_schema) and (not s.logprobs or caps.logprobs)
            and (req.lora is None or caps.lora) and (not req.tools or caps.tools or caps.json_schema))

