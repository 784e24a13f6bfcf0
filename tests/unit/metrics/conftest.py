"""Helpers for the metrics unit tests: parse an exposition, a fake NVML at the function boundary."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families


def parse(text: bytes | str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, frozenset(labels.items())): value} of a Prometheus text exposition."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: dict, name: str, /, **labels: str) -> float:
    """The value of the one sample named `name` whose labels include `labels`."""
    hits = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) == 1, f"{name} {labels}: {len(hits)} samples"
    return hits[0]


def total(samples: dict, name: str, /, **labels: str) -> float:
    """The sum over samples named `name` whose labels include `labels` (0 when there are none)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


class FakeNVMLError(Exception):
    pass


class FakeNVMLNotSupported(FakeNVMLError):
    pass


class FakeNVMLTimeout(FakeNVMLError):
    pass


class FakeNvml:
    """Replaces exactly the NVML function boundary: the nvml* functions pynvml exposes, in NVML's units."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus: list[dict] | None = None, *, init_error: Exception | None = None):
        self.gpus = gpus if gpus is not None else [fake_gpu(0)]
        self.init_error = init_error
        self.events: list[SimpleNamespace] = []
        self.calls: list[str] = []
        self.shutdown = 0

    def _gpu(self, handle):
        gpu = self.gpus[handle]
        if gpu.get("lost"):
            raise FakeNVMLError("GPU is lost")
        return gpu

    def _get(self, handle, key):
        gpu = self._gpu(handle)
        if key not in gpu:
            raise FakeNVMLNotSupported("Not Supported")
        return gpu[key]

    def nvmlInit(self):
        self.calls.append("init")
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self):
        self.shutdown += 1

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetIndex(self, handle):
        return handle

    def nvmlDeviceGetUUID(self, handle):
        return self.gpus[handle]["uuid"]

    def nvmlDeviceGetName(self, handle):
        return self.gpus[handle]["name"]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == 0
        return self._get(handle, "temp_c")

    def nvmlDeviceGetFieldValues(self, handle, ids):
        gpu = self._gpu(handle)
        table = {82: gpu.get("mem_temp_c"), 197: gpu.get("pcie_tx_total"), 198: gpu.get("pcie_rx_total")}
        out = []
        for fid in ids:
            v = table.get(fid)
            out.append(SimpleNamespace(fieldId=fid, nvmlReturn=0 if v is not None else 3,
                                       valueType=3 if fid != 82 else 5,
                                       value=SimpleNamespace(ullVal=v or 0, siVal=v or 0)))
        return out

    def nvmlDeviceGetMemoryInfo(self, handle):
        total, used = self._get(handle, "mem_total"), self._get(handle, "mem_used")
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle):
        gpu, mem = self._get(handle, "util")
        return SimpleNamespace(gpu=gpu, memory=mem)

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._get(handle, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return self._get(handle, "power_limit_mw")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self._get(handle, "energy_mj")

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return self._get(handle, {1: "sm_mhz", 2: "mem_mhz"}[clock])

    def nvmlDeviceGetRemappedRows(self, handle):
        return self._get(handle, "remapped")

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        assert counter_type == 0
        return self._get(handle, "ecc")[error_type]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self._get(handle, "reasons")

    def nvmlDeviceGetPcieThroughput(self, handle, counter):
        return self._get(handle, "pcie_kbps")[counter]

    def nvmlDeviceGetFanSpeed(self, handle):
        return self._get(handle, "fan_pct")

    def nvmlEventSetCreate(self):
        return "eventset"

    def nvmlEventSetFree(self, events):
        pass

    def nvmlDeviceRegisterEvents(self, handle, types, events):
        assert types == 8 and events == "eventset"
        if not self.gpus[handle].get("xid_events", True):
            raise FakeNVMLNotSupported("Not Supported")

    def nvmlEventSetWait(self, events, timeout_ms):
        assert timeout_ms == 0
        if not self.events:
            raise FakeNVMLTimeout("Timeout")
        return self.events.pop(0)

    def xid(self, index: int, code: int) -> None:
        self.events.append(SimpleNamespace(device=index, eventType=8, eventData=code))


def fake_gpu(index: int, **over) -> dict:
    gpu = {
        "uuid": f"GPU-0000000{index}-fake", "name": "NVIDIA H200", "temp_c": 61, "mem_temp_c": 72,
        "mem_total": 150_000_000_000, "mem_used": 120_000_000_000, "util": (87, 45),
        "power_mw": 412_345, "power_limit_mw": 700_000, "energy_mj": 9_876_543_210,
        "sm_mhz": 1980, "mem_mhz": 2619, "remapped": (3, 1, 0, 0), "ecc": (5, 0),
        "reasons": 0x4 | 0x40, "pcie_tx_total": 123_456_789, "pcie_rx_total": 987_654_321,
        "pcie_kbps": (2000, 3000), "fan_pct": 55,
    }
    gpu.update(over)
    return {k: v for k, v in gpu.items() if v is not None}


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, as a fixture (test modules do not import conftest)."""
    return SimpleNamespace(parse=parse, value=value, total=total, FakeNvml=FakeNvml, fake_gpu=fake_gpu,
                           NVMLError=FakeNVMLError)
