"""Host CPU and RAM at scrape time (psutil). Without psutil the collector reports nothing."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def load_psutil() -> Any | None:
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


class HostCollector(Collector):
    def __init__(self, psutil: Any | None):
        self._psutil = psutil

    def collect(self) -> Iterator[Metric]:
        ps = self._psutil
        if ps is None:
            return
        times = ps.cpu_times()
        cpu = CounterMetricFamily("deeplocal_host_cpu_seconds", "CPU time by mode, all cores.",
                                  labels=["mode"])
        for mode in CPU_MODES:
            if hasattr(times, mode):
                cpu.add_metric([mode], float(getattr(times, mode)))
        yield cpu
        yield GaugeMetricFamily("deeplocal_host_cpu_count", "Logical CPUs.", value=float(ps.cpu_count() or 0))
        if hasattr(os, "getloadavg"):
            yield GaugeMetricFamily("deeplocal_host_load1", "1-minute load average.",
                                    value=float(os.getloadavg()[0]))
        mem = ps.virtual_memory()
        yield GaugeMetricFamily("deeplocal_host_memory_total_bytes", "Physical RAM.", value=float(mem.total))
        yield GaugeMetricFamily("deeplocal_host_memory_available_bytes",
                                "RAM available to new processes without swapping.",
                                value=float(mem.available))
        yield GaugeMetricFamily("deeplocal_host_memory_used_bytes", "RAM in use (total - available).",
                                value=float(mem.total - mem.available))
