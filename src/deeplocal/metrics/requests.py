"""Request metrics with vLLM's meanings (TTFT, TPOT, ITL, E2E, queue time), token and spend counters.

One `RequestTimer` per request: `queued_done()` when the engine admits it, `token(n)` on every streamed
chunk that carries tokens, `finish(...)` once at the end (repeat calls do nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Buckets span a GPU (ms per token) and a CPU running a large model (seconds per token).
TTFT_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0)
TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1,
                     0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0)
E2E_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
               240.0, 480.0, 960.0, 1920.0, 7680.0)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0,
                 80.0, 160.0, 320.0, 640.0)

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "abort", "content_filter", "error"})
OTHER = "other"


class LabelGuard:
    """Bounds label values: the first `limit` distinct values per label pass, later ones read "other"."""

    def __init__(self, limit: int):
        self._limit = limit
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def value(self, label: str, raw: str | None) -> str:
        text = (raw or "none")[:128]
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if text in seen:
                return text
            if len(seen) < self._limit:
                seen.add(text)
                return text
        return OTHER


def status_label(status: str | int) -> str:
    text = str(status)
    return text if len(text) == 3 and text.isdigit() else OTHER


def finish_label(reason: str | None) -> str:
    if reason is None:
        return "none"
    text = getattr(reason, "value", reason)
    return text if text in FINISH_REASONS else OTHER


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What one finished request measured; handy for the request log line."""

    model: str
    upstream: str
    status: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    e2e_s: float
    ttft_s: float | None
    tpot_s: float | None
    queue_s: float | None
    spend_usd: float


class RequestMetrics:
    """The request-level instruments, registered on one app's registry."""

    def __init__(self, registry: CollectorRegistry, *, guard: LabelGuard, tenant_label: bool = False,
                 prices: Mapping[str, tuple[float, float]] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.guard = guard
        self.tenant_label = tenant_label
        self.prices = dict(prices or {})
        self.clock = clock
        mu = ("model", "upstream")
        usage = (*mu, "tenant") if tenant_label else mu
        self.ttft = Histogram("deeplocal_request_time_to_first_token_seconds",
                              "Time from arrival to the first output token.", mu,
                              buckets=TTFT_BUCKETS, registry=registry)
        self.tpot = Histogram("deeplocal_request_time_per_output_token_seconds",
                              "Mean time per output token after the first, per request (>= 2 tokens).",
                              mu, buckets=TOKEN_GAP_BUCKETS, registry=registry)
        self.itl = Histogram("deeplocal_request_inter_token_latency_seconds",
                             "Time between consecutive streamed chunks carrying tokens.", mu,
                             buckets=TOKEN_GAP_BUCKETS, registry=registry)
        self.e2e = Histogram("deeplocal_request_e2e_latency_seconds",
                             "Time from arrival to the last byte, successful (2xx) requests.", mu,
                             buckets=E2E_BUCKETS, registry=registry)
        self.queue = Histogram("deeplocal_request_queue_time_seconds",
                               "Time from arrival until the engine admitted the request.", mu,
                               buckets=QUEUE_BUCKETS, registry=registry)
        self.prompt_tokens = Counter("deeplocal_prompt_tokens", "Prompt tokens processed.", mu,
                                     registry=registry)
        self.generation_tokens = Counter("deeplocal_generation_tokens", "Tokens generated.", mu,
                                         registry=registry)
        self.requests = Counter("deeplocal_requests", "Finished requests.",
                                (*mu, "status", "finish_reason"), registry=registry)
        self.in_flight = Gauge("deeplocal_requests_in_flight", "Requests started and not finished.", mu,
                               registry=registry)
        self.usage_tokens = Counter("deeplocal_usage_tokens", "Tokens billed, by kind (prompt, completion).",
                                    (*usage, "kind"), registry=registry)
        self.spend = Counter("deeplocal_estimated_spend_usd",
                             "Estimated spend on priced (remote) upstreams, from their per-token prices.",
                             usage, registry=registry)
        self._series: dict[tuple[str, str], _Series] = {}

    def price(self, *, model: str, upstream: str) -> tuple[float, float] | None:
        """USD per million (prompt, completion) tokens: key "upstream/model" first, then "upstream"."""
        return self.prices.get(f"{upstream}/{model}") or self.prices.get(upstream)

    def start(self, *, model: str, upstream: str, t0: float | None = None) -> RequestTimer:
        labels = (self.guard.value("model", model), self.guard.value("upstream", upstream))
        series = self._series.get(labels)
        if series is None:
            series = self._series.setdefault(labels, _Series(self, labels))
        series.in_flight.inc()
        return RequestTimer(self, labels, names=(model[:128], upstream[:128]),
                            price=self.price(model=model, upstream=upstream), t0=t0, series=series)


class _Series:
    """The children of one (model, upstream) label pair, resolved once: `labels()` takes a lock and
    builds a key on every call, and a request touches a dozen of them."""

    def __init__(self, m: RequestMetrics, labels: tuple[str, str]):
        self._m, self._labels = m, labels
        self.ttft, self.tpot, self.itl = m.ttft.labels(*labels), m.tpot.labels(*labels), m.itl.labels(*labels)
        self.e2e, self.queue = m.e2e.labels(*labels), m.queue.labels(*labels)
        self.prompt_tokens = m.prompt_tokens.labels(*labels)
        self.generation_tokens = m.generation_tokens.labels(*labels)
        self.in_flight = m.in_flight.labels(*labels)
        self._requests: dict[tuple[str, str], Any] = {}
        self._usage: dict[tuple[str, ...], tuple[Any, Any, tuple[str, ...]]] = {}

    def requests(self, status: str, finish: str) -> Any:
        child = self._requests.get((status, finish))
        if child is None:
            child = self._requests[(status, finish)] = self._m.requests.labels(*self._labels, status, finish)
        return child

    def usage(self, tenant: str | None) -> tuple[Any, Any, Any]:
        """(prompt tokens, completion tokens, labels for spend) per tenant when tenants are labels.
        The spend child is made only when spent: an unpriced upstream shows no spend series."""
        m = self._m
        labels = (*self._labels, m.guard.value("tenant", tenant)) if m.tenant_label else self._labels
        children = self._usage.get(labels)
        if children is None:
            children = self._usage[labels] = (m.usage_tokens.labels(*labels, "prompt"),
                                              m.usage_tokens.labels(*labels, "completion"), labels)
        return children


class RequestTimer:
    """Times one request. Thread-safe; `finish` is idempotent and returns the same summary each time."""

    def __init__(self, owner: RequestMetrics, labels: tuple[str, str], *, names: tuple[str, str],
                 price: tuple[float, float] | None = None, t0: float | None = None,
                 series: _Series | None = None):
        self._m = owner
        self._labels = labels
        self._names = names
        self._price = price
        self._lock = threading.Lock()
        self._t0 = owner.clock() if t0 is None else t0   # t0: when the request arrived
        self._queue_s: float | None = None
        self._first: float | None = None
        self._last: float | None = None
        self._summary: RequestSummary | None = None
        self._s = series if series is not None else _Series(owner, labels)

    @property
    def finished(self) -> bool:
        return self._summary is not None

    def queued_done(self) -> None:
        """The engine admitted the request (first scheduler step). Only the first call counts."""
        with self._lock:
            if self._queue_s is not None or self._summary is not None:
                return
            self._queue_s = self._m.clock() - self._t0
            self._s.queue.observe(self._queue_s)

    def token(self, n_tokens: int = 1) -> None:
        """A streamed chunk with `n_tokens` tokens left the server: the first is TTFT, later gaps are ITL."""
        if n_tokens <= 0:
            return
        with self._lock:
            if self._summary is not None:
                return
            now = self._m.clock()
            if self._first is None:
                self._first = now
                self._s.ttft.observe(now - self._t0)
            else:
                self._s.itl.observe(now - self._last)
            self._last = now

    def finish(self, *, status: str, finish_reason: str | None, prompt_tokens: int,
               completion_tokens: int, tenant: str | None = None, spend_usd: float | None = None) -> RequestSummary:
        """`spend_usd`: what the request cost, when the caller knows (a routed upstream's prices);
        otherwise it is estimated from the metrics' own price table, if it has this upstream."""
        with self._lock:
            if self._summary is not None:
                return self._summary
            self._summary = self._record(status, finish_reason, max(0, prompt_tokens),
                                         max(0, completion_tokens), tenant, spend_usd)
            return self._summary

    def _record(self, status: str, finish_reason: str | None, prompt: int, completion: int,
                tenant: str | None, spend_usd: float | None) -> RequestSummary:
        m, series = self._m, self._s
        now = m.clock()
        e2e = now - self._t0
        status_text = status_label(status)
        ok = status_text.startswith("2")
        tpot = None
        if self._first is not None and self._last is not None and completion > 1:
            tpot = (self._last - self._first) / (completion - 1)
        if ok:
            series.e2e.observe(e2e)
            if tpot is not None:
                series.tpot.observe(tpot)
        series.requests(status_text, finish_label(finish_reason)).inc()
        series.prompt_tokens.inc(prompt)
        series.generation_tokens.inc(completion)
        prompt_usage, completion_usage, usage_labels = series.usage(tenant)
        prompt_usage.inc(prompt)
        completion_usage.inc(completion)
        spend = 0.0
        price = self._price
        if spend_usd is not None:
            spend = max(0.0, spend_usd)
        elif price is not None:
            spend = (prompt * price[0] + completion * price[1]) / 1e6
        if spend > 0 or (spend_usd is None and price is not None):
            m.spend.labels(*usage_labels).inc(spend)
        series.in_flight.dec()
        ttft = self._first - self._t0 if self._first is not None else None
        reason = None if finish_reason is None else str(getattr(finish_reason, "value", finish_reason))
        return RequestSummary(model=self._names[0], upstream=self._names[1], status=status_text,
                              finish_reason=reason, prompt_tokens=prompt, completion_tokens=completion,
                              e2e_s=e2e, ttft_s=ttft,
                              tpot_s=tpot, queue_s=self._queue_s, spend_usd=spend)
