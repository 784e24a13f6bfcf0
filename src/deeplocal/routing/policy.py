"""Routing policy as pure functions: order the candidate upstreams for a request's data class and
load, and space out retries. The router gathers the facts (a Candidate per alias entry) and acts on
the plan. Classifying the data is the gateway's job (deeplocal.gateway.pii.classify)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deeplocal.routing.config import DataClass, EnergySettings, PolicySettings, RetrySettings


@dataclass(frozen=True, slots=True)
class Candidate:
    """One alias entry, with what the router knows about its upstream right now."""

    upstream: str
    model: str
    remote: bool
    allowed: frozenset[str]
    device: str | None = None
    weight: float = 1.0
    waiting: int = 0
    running: int = 0
    ttft_ewma_s: float | None = None
    breaker_allows: bool = True
    healthy: bool = True
    disabled: str | None = None
    capable: bool = True

    @property
    def in_flight(self) -> int:
        return self.waiting + self.running


@dataclass(frozen=True, slots=True)
class RoutePlan:
    order: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...] = ()   # (upstream, why), in alias order
    refused_for_data: tuple[str, ...] = ()      # upstreams the data class kept the request from
    overflowed: bool = False                    # a busy local was put behind a remote


def predicted_ttft_s(c: Candidate) -> float | None:
    """Observed time to first token times the queue ahead of this request plus one; None if unknown."""
    if c.ttft_ewma_s is None:
        return None
    return c.ttft_ewma_s * (c.waiting + 1)


def is_busy(c: Candidate, policy: PolicySettings) -> bool:
    o = policy.overflow
    if c.waiting >= o.max_queue and (o.max_queue > 0 or c.waiting > 0):
        return True
    predicted = predicted_ttft_s(c)
    return o.ttft_slo_s is not None and predicted is not None and predicted > o.ttft_slo_s


def plan_route(
    candidates: Sequence[Candidate],
    *,
    data_class: DataClass,
    can_pseudonymize: bool,
    policy: PolicySettings,
    energy: EnergySettings,
    arrival_rps: float,
    rng: random.Random,
) -> RoutePlan:
    skipped: list[tuple[str, str]] = []
    refused: list[str] = []
    usable: list[Candidate] = []
    for c in candidates:
        why = _unusable(c, data_class, can_pseudonymize)
        if why is not None:
            skipped.append((c.upstream, why))
            if why.startswith(("may not receive", "may receive internal")):
                refused.append(c.upstream)
        else:
            usable.append(c)
    locals_ = order_locals([c for c in usable if not c.remote], policy=policy, energy=energy,
                           arrival_rps=arrival_rps, rng=rng)
    remotes = [c for c in usable if c.remote]
    if remotes:
        ready = [c for c in locals_ if not is_busy(c, policy)]
        busy = [c for c in locals_ if is_busy(c, policy)]
        order = ready + remotes + busy
        overflowed = bool(busy)
    else:
        order, overflowed = locals_, False
    return RoutePlan(tuple(order), tuple(skipped), tuple(refused), overflowed)


def _unusable(c: Candidate, data_class: DataClass, can_pseudonymize: bool) -> str | None:
    if data_class not in c.allowed:
        return f"may not receive {data_class} data"
    if c.remote and data_class == "internal" and not can_pseudonymize:
        return "may receive internal data only pseudonymized, and no pseudonymizer is configured"
    if c.disabled:
        return f"disabled: {c.disabled}"
    if not c.capable:
        return "lacks a capability this request needs"
    if not c.healthy:
        return "failing health checks"
    if not c.breaker_allows:
        return "circuit open"
    return None


def order_locals(
    locals_: Sequence[Candidate],
    *,
    policy: PolicySettings,
    energy: EnergySettings,
    arrival_rps: float,
    rng: random.Random,
) -> list[Candidate]:
    """Energy placement across CPU/GPU replicas first, then the selection rule within each group."""
    cpus = [c for c in locals_ if c.device == "cpu"]
    gpus = [c for c in locals_ if c.device == "gpu"]
    if energy.enabled and cpus and gpus:
        others = [c for c in locals_ if c.device is None]
        low = min(c.in_flight for c in cpus) < energy.cpu_max_in_flight and arrival_rps <= energy.burst_rps
        groups = [cpus, gpus] if low else [gpus, cpus]
        groups.append(others)
    else:
        groups = [list(locals_)]
    out: list[Candidate] = []
    for group in groups:
        out.extend(_select(group, policy.selection, rng))
    return out


def _select(group: list[Candidate], selection: str, rng: random.Random) -> list[Candidate]:
    if selection == "least_loaded":
        return sorted(group, key=lambda c: c.in_flight / c.weight)  # stable: config order breaks ties
    if selection == "weighted":
        return _weighted_order(group, rng)
    return list(group)


def _weighted_order(group: Iterable[Candidate], rng: random.Random) -> list[Candidate]:
    """A random order where each next pick is drawn in proportion to weight (without replacement)."""
    pool = list(group)
    out = []
    while pool:
        pick = rng.uniform(0, sum(c.weight for c in pool))
        for i, c in enumerate(pool):
            pick -= c.weight
            if pick <= 0 or i == len(pool) - 1:
                out.append(pool.pop(i))
                break
    return out


def backoff_s(attempt: int, retry: RetrySettings, rng: random.Random, *, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (0-based); never less than an
    upstream's Retry-After, never more than backoff_max_s."""
    ceiling = min(retry.backoff_max_s, retry.backoff_base_s * (2 ** attempt))
    delay = rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, retry.backoff_max_s)
