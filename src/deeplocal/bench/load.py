"""Async load generator: a concurrency level or a Poisson/gamma arrival rate, with hard caps."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from deeplocal.bench.datasets import BenchPrompt
from deeplocal.bench.metrics import RequestResult
from deeplocal.bench.stream import Target, cancelled_result, send


@dataclass(frozen=True, slots=True)
class LoadLevel:
    """One point of a sweep: at most `concurrency` in flight (None: unbounded) at `rate` req/s (inf: at once)."""

    concurrency: int | None = 1
    rate: float = math.inf
    burstiness: float = 1.0

    def label(self) -> str:
        parts = []
        if self.concurrency is not None:
            parts.append(f"c={self.concurrency}")
        if math.isfinite(self.rate):
            parts.append(f"rate={self.rate:g}/s" + (f" b={self.burstiness:g}" if self.burstiness != 1 else ""))
        return " ".join(parts) or "unbounded"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    timeout_s: float = 600.0
    new_connection: bool = False     # no keep-alive: llama-server closes reused connections after a stream
    max_duration_s: float = 600.0    # hard cap per level: in-flight requests are cancelled at the cap


@dataclass(frozen=True, slots=True)
class LevelResult:
    level: LoadLevel
    results: tuple[RequestResult, ...]
    duration_s: float
    capped: bool                      # the time cap ended the level


class DiscoveryError(RuntimeError):
    """The endpoint's /models could not be read to pick a model."""


def arrival_intervals(n: int, rate: float, burstiness: float, seed: int) -> list[float]:
    """Gaps before each next request: gamma(shape=burstiness, mean=1/rate); burstiness 1 is Poisson."""
    if not math.isfinite(rate):
        return [0.0] * n
    if rate <= 0 or burstiness <= 0:
        raise ValueError("rate and burstiness must be > 0")
    rng = random.Random(seed)
    scale = 1.0 / (rate * burstiness)
    return [rng.gammavariate(burstiness, scale) for _ in range(n)]


def make_client(options: ClientOptions, concurrency: int | None) -> httpx.AsyncClient:
    keepalive = 0 if options.new_connection else (concurrency or 100)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(options.timeout_s, connect=min(30.0, options.timeout_s)),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=keepalive),
    )


async def discover_model(base_url: str, api_key: str | None, timeout_s: float = 10.0) -> str:
    """The first model id the endpoint lists at GET {base_url}/models."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(base_url.rstrip("/") + "/models", headers=headers)
            response.raise_for_status()
            models = response.json().get("data") or []
    except (httpx.HTTPError, ValueError) as exc:
        raise DiscoveryError(f"cannot list models at {base_url}/models: {exc}; pass --model") from exc
    if not models or "id" not in models[0]:
        raise DiscoveryError(f"{base_url}/models lists no model; pass --model")
    return str(models[0]["id"])


async def run_level(
    target: Target,
    prompts: list[BenchPrompt],
    level: LoadLevel,
    options: ClientOptions,
    *,
    seed: int = 0,
    on_result: Callable[[RequestResult], None] | None = None,
) -> LevelResult:
    """Send every prompt under `level`; stop at options.max_duration_s and cancel what is in flight."""
    results: list[RequestResult] = []
    gate = asyncio.Semaphore(level.concurrency) if level.concurrency else None
    intervals = arrival_intervals(len(prompts), level.rate, level.burstiness, seed)

    async def one(client: httpx.AsyncClient, prompt: BenchPrompt) -> None:
        queued = time.perf_counter()
        try:
            if gate is None:
                result = await send(client, target, prompt)
            else:
                async with gate:
                    result = await send(client, target, prompt)
        except asyncio.CancelledError:
            results.append(cancelled_result(queued))
            raise
        results.append(result)
        if on_result is not None:
            on_result(result)

    async with make_client(options, level.concurrency) as client:
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        capped = False
        try:
            async with asyncio.timeout(options.max_duration_s):
                for prompt, gap in zip(prompts, intervals):
                    tasks.append(asyncio.create_task(one(client, prompt)))
                    if gap > 0:
                        await asyncio.sleep(gap)
                await asyncio.gather(*tasks)
        except TimeoutError:
            capped = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        duration = time.perf_counter() - start
    return LevelResult(level, tuple(results), duration, capped)


async def warm_up(target: Target, prompts: list[BenchPrompt], options: ClientOptions) -> list[RequestResult]:
    """Send prompts one at a time and discard their timings (model load, caches, connections)."""
    async with make_client(options, 1) as client:
        return [await send(client, target, prompt) for prompt in prompts]
