"""Engine metrics read from each backend's `stats()` at scrape time, and upstream breaker states."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from deeplocal.engine.types import BackendStats

log = logging.getLogger("deeplocal.metrics")

BREAKER_STATES = ("closed", "open", "half_open")


class EngineCollector(Collector):
    """One sample set per entry of `backends()`, labelled `upstream` with the mapping's key."""

    def __init__(self, backends: Callable[[], Mapping[str, Any]]):
        self._backends = backends

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("deeplocal_engine_up", "1 if stats() answered and the backend is healthy.",
                               labels=["upstream"])
        gauges = {
            "waiting": GaugeMetricFamily("deeplocal_engine_requests_waiting",
                                         "Requests queued in the engine.", labels=["upstream"]),
            "running": GaugeMetricFamily("deeplocal_engine_requests_running",
                                         "Requests being decoded by the engine.", labels=["upstream"]),
            "kv_usage": GaugeMetricFamily("deeplocal_engine_kv_cache_usage_ratio",
                                          "Fraction of KV cache in use (0-1).", labels=["upstream"]),
            "kv_total": GaugeMetricFamily("deeplocal_engine_kv_cache_capacity",
                                          "KV cache capacity (cells or blocks, as the engine counts).",
                                          labels=["upstream"]),
            "prefix_hit_rate": GaugeMetricFamily("deeplocal_engine_prefix_cache_hit_ratio",
                                                 "Prefix cache hits / queries, in tokens, since start.",
                                                 labels=["upstream"]),
            "prompt_tps": GaugeMetricFamily("deeplocal_engine_prompt_tokens_per_second",
                                            "Recent prompt throughput the engine reports.",
                                            labels=["upstream"]),
            "gen_tps": GaugeMetricFamily("deeplocal_engine_generation_tokens_per_second",
                                         "Recent generation throughput the engine reports.",
                                         labels=["upstream"]),
        }
        counters = {
            "prefix_hit_tokens": CounterMetricFamily("deeplocal_engine_prefix_cache_hit_tokens",
                                                     "Prompt tokens served from the prefix cache.",
                                                     labels=["upstream"]),
            "prefix_query_tokens": CounterMetricFamily("deeplocal_engine_prefix_cache_query_tokens",
                                                       "Prompt tokens looked up in the prefix cache.",
                                                       labels=["upstream"]),
            "preemptions": CounterMetricFamily("deeplocal_engine_preemptions",
                                               "Sequences preempted (evicted and recomputed).",
                                               labels=["upstream"]),
            "prompt_tokens_total": CounterMetricFamily("deeplocal_engine_prompt_tokens",
                                                       "Prompt tokens the engine processed.",
                                                       labels=["upstream"]),
            "generation_tokens_total": CounterMetricFamily("deeplocal_engine_generation_tokens",
                                                           "Tokens the engine generated.",
                                                           labels=["upstream"]),
        }
        for name, stats in self._read():
            if stats is None:
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1 if stats.healthy else 0)
            values = {"waiting": stats.waiting, "running": stats.running, "kv_usage": stats.kv_usage,
                      "kv_total": stats.kv_total, "prefix_hit_rate": stats.prefix_hit_rate,
                      "prompt_tps": stats.prompt_tokens_per_s, "gen_tps": stats.generation_tokens_per_s}
            for key, family in gauges.items():
                family.add_metric([name], float(values[key]))
            for key, family in counters.items():
                family.add_metric([name], float(getattr(stats, key)))
        yield up
        yield from gauges.values()
        yield from counters.values()

    def _read(self) -> list[tuple[str, BackendStats | None]]:
        try:
            backends = dict(self._backends())
        except Exception:  # a scrape must never fail because the app is starting or stopping
            log.warning("metrics: backends() failed", exc_info=True)
            return []
        out: list[tuple[str, BackendStats | None]] = []
        for name, backend in sorted(backends.items()):
            try:
                out.append((str(name), backend.stats()))
            except Exception:
                log.warning("metrics: stats() of %s failed", name, exc_info=True)
                out.append((str(name), None))
        return out


class BreakerCollector(Collector):
    """`deeplocal_upstream_breaker_state{upstream,state}`: 1 for the current state, 0 for the others."""

    def __init__(self, breakers: Callable[[], Mapping[str, str]]):
        self._breakers = breakers

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("deeplocal_upstream_breaker_state",
                                   "Circuit breaker state per upstream (closed, open, half_open).",
                                   labels=["upstream", "state"])
        try:
            states = dict(self._breakers())
        except Exception:
            log.warning("metrics: breakers() failed", exc_info=True)
            states = {}
        for upstream, current in sorted(states.items()):
            current = str(getattr(current, "value", current)).lower()
            for state in BREAKER_STATES:
                family.add_metric([str(upstream), state], 1.0 if state == current else 0.0)
        yield family
