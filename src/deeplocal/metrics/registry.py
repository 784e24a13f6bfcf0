"""`Metrics`: one per app. Owns its CollectorRegistry (never the global one) and every collector on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest

from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.energy import RaplCollector, RaplReader
from deeplocal.metrics.engine import BreakerCollector, EngineCollector
from deeplocal.metrics.gpu import GpuCollector, NvmlReader, load_pynvml
from deeplocal.metrics.host import HostCollector, load_psutil
from deeplocal.metrics.requests import LabelGuard, RequestMetrics, RequestTimer

_DEFAULT = object()


class Metrics:
    """Request, engine, GPU, host and energy metrics for one app.

    backends: called at scrape time; maps an upstream name to a Backend (its `stats()` is read).
    prices:   USD per million (prompt, completion) tokens, keyed "upstream/model" or "upstream".
    nvml:     a module-like NVML object (pynvml or a test fake); default: import pynvml; None: no GPU.
    breakers: optional, called at scrape time; maps an upstream name to its breaker state.
    """

    def __init__(self, settings_section: MetricsSettings | None = None, *,
                 backends: Callable[[], Mapping[str, Any]],
                 prices: Mapping[str, tuple[float, float]] | None = None,
                 nvml: Any = _DEFAULT,
                 breakers: Callable[[], Mapping[str, str]] | None = None,
                 psutil: Any = _DEFAULT,
                 clock: Callable[[], float] = time.perf_counter):
        self.settings = settings_section or MetricsSettings()
        s = self.settings
        self.registry = CollectorRegistry()  # no auto_describe: collectors run only on a scrape
        self.guard = LabelGuard(s.max_label_values)
        self.requests = RequestMetrics(self.registry, guard=self.guard, tenant_label=s.tenant_label,
                                       prices=prices, clock=clock)
        self.registry.register(EngineCollector(backends))
        if breakers is not None:
            self.registry.register(BreakerCollector(breakers))
        self.gpu_reader: NvmlReader | None = None
        if s.gpu:
            self.gpu_reader = NvmlReader(load_pynvml() if nvml is _DEFAULT else nvml)
            self.registry.register(GpuCollector(self.gpu_reader))
        if s.host_metrics:
            self.registry.register(HostCollector(load_psutil() if psutil is _DEFAULT else psutil))
            ProcessCollector(namespace="deeplocal", registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.rapl: RaplReader | None = None
        if s.rapl:
            self.rapl = RaplReader(s.rapl_root)
            self.registry.register(RaplCollector(self.rapl))

    def request_started(self, *, model: str, upstream: str, t0: float | None = None) -> RequestTimer:
        """Start timing a request (in-flight gauge up). Call `.finish(...)` exactly once at the end.

        t0: the request's arrival on this registry's clock, when it arrived before the upstream was known.
        """
        return self.requests.start(model=model, upstream=upstream, t0=t0)

    def now(self) -> float:
        return self.requests.clock()

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (what GET /metrics returns)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Release NVML. Safe to call more than once."""
        if self.gpu_reader is not None:
            self.gpu_reader.close()
