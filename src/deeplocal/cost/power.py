"""Power draw for the cost model: measured from a deeplocal /metrics endpoint, or TDP x utilisation."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

GPU_POWER_METRICS = ("deeplocal_gpu_power_watts", "DCGM_FI_DEV_POWER_USAGE")
CPU_ENERGY_METRIC = "deeplocal_cpu_energy_joules"


class PowerError(RuntimeError):
    """No power reading could be taken; the message says what was missing."""


def gpu_watts(metrics_text: str) -> float | None:
    """Sum of the GPU power gauges in one scrape (deeplocal's NVML collector or DCGM); None if absent."""
    total, seen = 0.0, False
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name in GPU_POWER_METRICS:
                total += sample.value
                seen = True
    return total if seen else None


def cpu_joules(metrics_text: str) -> float | None:
    total, seen = 0.0, False
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == CPU_ENERGY_METRIC + "_total":
                total += sample.value
                seen = True
    return total if seen else None


def measured_watts(first: str, second: str, seconds: float) -> float:
    """GPU watts from the second scrape plus CPU package watts from the energy counter's rise."""
    gpu = gpu_watts(second)
    j1, j2 = cpu_joules(first), cpu_joules(second)
    cpu = (j2 - j1) / seconds if j1 is not None and j2 is not None and seconds > 0 else None
    if gpu is None and cpu is None:
        raise PowerError("the metrics carry no GPU power gauge and no CPU energy counter "
                         f"({', '.join(GPU_POWER_METRICS)}, {CPU_ENERGY_METRIC}_total)")
    return (gpu or 0.0) + (cpu or 0.0)


def scrape_watts(url: str, seconds: float = 5.0, timeout_s: float = 10.0) -> float:
    """Scrape `url` twice, `seconds` apart, and return the measured draw in watts."""
    try:
        with httpx.Client(timeout=timeout_s) as client:
            first = client.get(url).raise_for_status().text
            time.sleep(seconds)
            second = client.get(url).raise_for_status().text
    except httpx.HTTPError as exc:
        raise PowerError(f"cannot scrape {url}: {exc}") from exc
    return measured_watts(first, second, seconds)


def tdp_watts(tdp_watts_per_device: float, devices: int, utilisation: float, base_watts: float = 0.0) -> float:
    """Estimated draw: base (CPU, fans, disks) + devices x TDP x utilisation."""
    return base_watts + devices * tdp_watts_per_device * utilisation
