"""GPU metrics through NVML (`pynvml` from nvidia-ml-py), per GPU, labelled index/uuid/name.

`NvmlReader` is the only code that calls NVML: it takes a module-like object with the `nvml*` functions
and `NVMLError` (pynvml itself, or a test fake) and returns readings in base units (W, J, bytes, Hz,
ratios). Without NVML or a GPU the collector reports `deeplocal_gpu_available 0` and nothing else.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("deeplocal.metrics")

# NVML ABI constants (nvml.h); a unit test checks them against pynvml.
TEMPERATURE_GPU = 0
CLOCK_SM, CLOCK_MEM = 1, 2
PCIE_UTIL_TX_BYTES, PCIE_UTIL_RX_BYTES = 0, 1
FI_DEV_MEMORY_TEMP, FI_DEV_PCIE_COUNT_TX_BYTES, FI_DEV_PCIE_COUNT_RX_BYTES = 82, 197, 198
MEMORY_ERROR_TYPE_CORRECTED, MEMORY_ERROR_TYPE_UNCORRECTED, VOLATILE_ECC = 0, 1, 0
EVENT_TYPE_XID_CRITICAL_ERROR = 8
REASON_SW_POWER_CAP, REASON_HW_SLOWDOWN = 0x4, 0x8
REASON_SW_THERMAL, REASON_HW_THERMAL, REASON_HW_POWER_BRAKE = 0x20, 0x40, 0x80
THROTTLE_GROUPS = (("power", REASON_SW_POWER_CAP | REASON_HW_POWER_BRAKE),
                   ("thermal", REASON_SW_THERMAL | REASON_HW_THERMAL),
                   ("hw_slowdown", REASON_HW_SLOWDOWN))
_FIELD_ATTRS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
MAX_EVENTS_PER_SCRAPE = 1000

# name (without the deeplocal_gpu_ prefix) -> (type, help, extra label names)
SERIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "temperature_celsius": ("gauge", "GPU core temperature.", ()),
    "memory_temperature_celsius": ("gauge", "GPU memory (HBM) temperature.", ()),
    "memory_used_bytes": ("gauge", "GPU memory in use.", ()),
    "memory_free_bytes": ("gauge", "GPU memory free.", ()),
    "memory_total_bytes": ("gauge", "GPU memory installed.", ()),
    "utilization_ratio": ("gauge", "Fraction of time a kernel ran (last sample period).", ()),
    "memory_copy_utilization_ratio": ("gauge", "Fraction of time memory was read or written.", ()),
    "power_watts": ("gauge", "Power draw.", ()),
    "power_limit_watts": ("gauge", "Enforced power limit.", ()),
    "energy_joules": ("counter", "Energy consumed since the driver loaded.", ()),
    "sm_clock_hertz": ("gauge", "SM clock.", ()),
    "memory_clock_hertz": ("gauge", "Memory clock.", ()),
    "xid_errors": ("counter", "XID critical errors seen since the collector started.", ()),
    "last_xid": ("gauge", "Code of the last XID critical error seen (0: none).", ()),
    "remapped_rows": ("gauge", "Memory rows remapped (correctable, uncorrectable).", ("kind",)),
    "row_remap_pending": ("gauge", "1 if a row remap waits for a GPU reset.", ()),
    "row_remap_failure": ("gauge", "1 if a row remap failed.", ()),
    "ecc_errors": ("counter", "ECC errors since the driver loaded (corrected, uncorrected).", ("kind",)),
    "throttled": ("gauge", "1 while clocks are held down for this reason (power, thermal, hw_slowdown).",
                  ("reason",)),
    "clock_event_reasons": ("gauge", "Raw NVML clock event (throttle) reason bitmask.", ()),
    "pcie_bytes": ("counter", "PCIe bytes transferred (tx, rx).", ("direction",)),
    "pcie_throughput_bytes_per_second": ("gauge", "PCIe throughput over NVML's 20 ms window (tx, rx).",
                                         ("direction",)),
    "fan_speed_ratio": ("gauge", "Fan speed as a fraction of its maximum.", ()),
}


@dataclass(frozen=True, slots=True)
class Reading:
    series: str                                   # a key of SERIES
    value: float
    extra: tuple[str, ...] = ()                   # values for the series' extra labels


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    uuid: str
    name: str
    readings: tuple[Reading, ...]


def load_pynvml() -> Any | None:
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


class NvmlReader:
    """Talks to NVML. Each query that a GPU does not support is left out; one failing GPU spares the rest."""

    def __init__(self, nvml: Any | None):
        self.nvml = nvml
        self.error: str | None = None
        self._opened = False
        self._gpus: list[tuple[int, Any, str, str]] = []   # index, handle, uuid, name
        self._events: Any = None
        self._xid_count: dict[int, int] = {}
        self._last_xid: dict[int, int] = {}

    @property
    def available(self) -> bool:
        return self._opened and self.error is None and bool(self._gpus)

    def open(self) -> bool:
        if self._opened:
            return self.available
        self._opened = True
        if self.nvml is None:
            self.error = "pynvml is not installed"
            return False
        nvml = self.nvml
        try:
            nvml.nvmlInit()
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                self._gpus.append((index, handle, _text(nvml.nvmlDeviceGetUUID(handle)),
                                   _text(nvml.nvmlDeviceGetName(handle))))
        except nvml.NVMLError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self._gpus = []
            return False
        if not self._gpus:
            self.error = "NVML reports no GPU"
        self._register_xid_events()
        return self.available

    def close(self) -> None:
        if self._opened and self.nvml is not None and self.error is None:
            try:
                if self._events is not None:
                    self.nvml.nvmlEventSetFree(self._events)
                self.nvml.nvmlShutdown()
            except self.nvml.NVMLError:
                pass
        self._opened, self._gpus, self._events = False, [], None

    def read(self) -> list[GpuSample]:
        self._drain_xid_events()
        return [GpuSample(index=i, uuid=uuid, name=name, readings=tuple(self._read_one(i, h)))
                for i, h, uuid, name in self._gpus]

    def _read_one(self, index: int, h: Any) -> Iterator[Reading]:
        n = self.nvml
        yield from self._try(lambda: [Reading("temperature_celsius",
                                              float(n.nvmlDeviceGetTemperature(h, TEMPERATURE_GPU)))])
        yield from self._try(lambda: self._fields(h))
        yield from self._try(lambda: _memory(n.nvmlDeviceGetMemoryInfo(h)))
        yield from self._try(lambda: _utilization(n.nvmlDeviceGetUtilizationRates(h)))
        yield from self._try(lambda: [Reading("power_watts", n.nvmlDeviceGetPowerUsage(h) / 1000.0)])
        yield from self._try(lambda: [Reading("power_limit_watts",
                                              n.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0)])
        yield from self._try(lambda: [Reading("energy_joules",
                                              n.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0)])
        yield from self._try(lambda: [Reading("sm_clock_hertz", n.nvmlDeviceGetClockInfo(h, CLOCK_SM) * 1e6)])
        yield from self._try(lambda: [Reading("memory_clock_hertz",
                                              n.nvmlDeviceGetClockInfo(h, CLOCK_MEM) * 1e6)])
        yield from self._try(lambda: _remapped(n.nvmlDeviceGetRemappedRows(h)))
        yield from self._try(lambda: [
            Reading("ecc_errors", float(n.nvmlDeviceGetTotalEccErrors(h, MEMORY_ERROR_TYPE_CORRECTED,
                                                                      VOLATILE_ECC)), ("corrected",)),
            Reading("ecc_errors", float(n.nvmlDeviceGetTotalEccErrors(h, MEMORY_ERROR_TYPE_UNCORRECTED,
                                                                      VOLATILE_ECC)), ("uncorrected",))])
        yield from self._try(lambda: _throttle(self._reasons(h)))
        yield from self._try(lambda: [Reading("fan_speed_ratio", n.nvmlDeviceGetFanSpeed(h) / 100.0)])
        if index in self._xid_count:
            yield Reading("xid_errors", float(self._xid_count[index]))
            yield Reading("last_xid", float(self._last_xid.get(index, 0)))

    def _try(self, read: Callable[[], list[Reading]]) -> list[Reading]:
        try:
            return read()
        except self.nvml.NVMLError:
            return []                                  # not supported on this GPU, or the GPU is lost

    def _reasons(self, h: Any) -> int:
        fn = getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        fn = fn or self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(fn(h))

    def _fields(self, h: Any) -> list[Reading]:
        """Memory temperature and cumulative PCIe bytes in one call; PCIe falls back to throughput."""
        ids = (FI_DEV_MEMORY_TEMP, FI_DEV_PCIE_COUNT_TX_BYTES, FI_DEV_PCIE_COUNT_RX_BYTES)
        values = [_field_value(v) for v in self.nvml.nvmlDeviceGetFieldValues(h, list(ids))]
        out = []
        if values[0] is not None:
            out.append(Reading("memory_temperature_celsius", values[0]))
        if values[1] is not None and values[2] is not None:
            out += [Reading("pcie_bytes", values[1], ("tx",)), Reading("pcie_bytes", values[2], ("rx",))]
        else:  # each call samples a 20 ms window: slower, so only where the counters are missing
            out += self._try(lambda: [
                Reading("pcie_throughput_bytes_per_second",
                        self.nvml.nvmlDeviceGetPcieThroughput(h, PCIE_UTIL_TX_BYTES) * 1024.0, ("tx",)),
                Reading("pcie_throughput_bytes_per_second",
                        self.nvml.nvmlDeviceGetPcieThroughput(h, PCIE_UTIL_RX_BYTES) * 1024.0, ("rx",))])
        return out

    def _register_xid_events(self) -> None:
        if not self._gpus:
            return
        try:
            self._events = self.nvml.nvmlEventSetCreate()
        except self.nvml.NVMLError:
            return
        for index, handle, _, _ in self._gpus:
            try:
                self.nvml.nvmlDeviceRegisterEvents(handle, EVENT_TYPE_XID_CRITICAL_ERROR, self._events)
                self._xid_count[index] = 0
            except self.nvml.NVMLError:
                log.info("metrics: GPU %d does not report XID events", index)

    def _drain_xid_events(self) -> None:
        if self._events is None or not self._xid_count:
            return
        for _ in range(MAX_EVENTS_PER_SCRAPE):
            try:
                event = self.nvml.nvmlEventSetWait(self._events, 0)
                index = int(self.nvml.nvmlDeviceGetIndex(event.device))
            except self.nvml.NVMLError:                # NVMLError_Timeout: nothing pending
                return
            if event.eventType & EVENT_TYPE_XID_CRITICAL_ERROR and index in self._xid_count:
                self._xid_count[index] += 1
                self._last_xid[index] = int(event.eventData)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _field_value(value: Any) -> float | None:
    if getattr(value, "nvmlReturn", 1) != 0:
        return None
    attr = _FIELD_ATTRS.get(int(value.valueType))
    return float(getattr(value.value, attr)) if attr else None


def _memory(info: Any) -> list[Reading]:
    return [Reading("memory_used_bytes", float(info.used)), Reading("memory_free_bytes", float(info.free)),
            Reading("memory_total_bytes", float(info.total))]


def _utilization(rates: Any) -> list[Reading]:
    return [Reading("utilization_ratio", rates.gpu / 100.0),
            Reading("memory_copy_utilization_ratio", rates.memory / 100.0)]


def _remapped(rows: tuple[int, int, int, int]) -> list[Reading]:
    corr, unc, pending, failure = rows
    return [Reading("remapped_rows", float(corr), ("correctable",)),
            Reading("remapped_rows", float(unc), ("uncorrectable",)),
            Reading("row_remap_pending", 1.0 if pending else 0.0),
            Reading("row_remap_failure", 1.0 if failure else 0.0)]


def _throttle(mask: int) -> list[Reading]:
    return [Reading("clock_event_reasons", float(mask))] + [
        Reading("throttled", 1.0 if mask & bits else 0.0, (reason,)) for reason, bits in THROTTLE_GROUPS]


class GpuCollector(Collector):
    """Scrape-time GPU series. NVML is opened on the first scrape, not at construction."""

    def __init__(self, reader: NvmlReader):
        self.reader = reader
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            available = self.reader.open()
            samples = self.reader.read() if available else []
        yield GaugeMetricFamily("deeplocal_gpu_available", "1 if NVML answered and sees at least one GPU.",
                                value=1.0 if samples else 0.0)
        if not samples:
            return
        yield GaugeMetricFamily("deeplocal_gpu_count", "GPUs NVML sees.", value=float(len(samples)))
        families: dict[str, Any] = {}
        for sample in samples:
            for reading in sample.readings:
                family = families.get(reading.series) or families.setdefault(
                    reading.series, _family(reading.series))
                labels = [str(sample.index), sample.uuid, sample.name, *reading.extra]
                family.add_metric(labels, reading.value)
        yield from families.values()


def _family(series: str) -> Metric:
    kind, help_text, extra = SERIES[series]
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(f"deeplocal_gpu_{series}", help_text, labels=["index", "uuid", "name", *extra])
