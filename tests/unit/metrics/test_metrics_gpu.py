"""GPU collector: real NVML without a GPU, and a fake at the NVML function boundary with known values."""

from __future__ import annotations

import pynvml
import pytest

from deeplocal.metrics import gpu
from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.registry import Metrics


def scrape(kit, nvml) -> dict:
    m = Metrics(MetricsSettings(host_metrics=False, rapl=False), backends=dict, nvml=nvml)
    return kit.parse(m.exposition())


def gpu_names(samples: dict) -> set[str]:
    return {n for (n, _) in samples if n.startswith("deeplocal_gpu_")}


def test_real_nvml_without_gpu_reports_unavailable(kit):
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present: scripts/gpu_check.sh covers this machine")
    m = Metrics(MetricsSettings(host_metrics=False, rapl=False), backends=dict)  # real pynvml
    s = kit.parse(m.exposition())
    assert gpu_names(s) == {"deeplocal_gpu_available"}
    assert kit.value(s, "deeplocal_gpu_available") == 0
    assert "LibraryNotFound" in m.gpu_reader.error
    assert kit.value(kit.parse(m.exposition()), "deeplocal_gpu_available") == 0   # and again
    m.close()


def test_no_pynvml_module_reports_unavailable(kit):
    s = scrape(kit, None)
    assert gpu_names(s) == {"deeplocal_gpu_available"} and kit.value(s, "deeplocal_gpu_available") == 0


def test_constants_match_pynvml():
    assert gpu.TEMPERATURE_GPU == pynvml.NVML_TEMPERATURE_GPU
    assert (gpu.CLOCK_SM, gpu.CLOCK_MEM) == (pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_MEM)
    assert gpu.PCIE_UTIL_TX_BYTES == pynvml.NVML_PCIE_UTIL_TX_BYTES
    assert gpu.PCIE_UTIL_RX_BYTES == pynvml.NVML_PCIE_UTIL_RX_BYTES
    assert gpu.FI_DEV_MEMORY_TEMP == pynvml.NVML_FI_DEV_MEMORY_TEMP
    assert gpu.FI_DEV_PCIE_COUNT_TX_BYTES == pynvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES
    assert gpu.FI_DEV_PCIE_COUNT_RX_BYTES == pynvml.NVML_FI_DEV_PCIE_COUNT_RX_BYTES
    assert gpu.MEMORY_ERROR_TYPE_UNCORRECTED == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    assert gpu.VOLATILE_ECC == pynvml.NVML_VOLATILE_ECC
    assert gpu.EVENT_TYPE_XID_CRITICAL_ERROR == pynvml.nvmlEventTypeXidCriticalError
    assert gpu.REASON_SW_POWER_CAP == pynvml.nvmlClocksEventReasonSwPowerCap
    assert gpu.REASON_HW_POWER_BRAKE == pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown
    assert gpu.REASON_SW_THERMAL == pynvml.nvmlClocksEventReasonSwThermalSlowdown
    assert gpu.REASON_HW_THERMAL == pynvml.nvmlClocksEventReasonHwThermalSlowdown
    assert gpu.REASON_HW_SLOWDOWN == pynvml.nvmlClocksEventReasonHwSlowdown
    for name in ("dVal", "uiVal", "ullVal", "siVal"):
        assert name in dict(pynvml.c_nvmlValue_t._fields_)


def test_known_values_and_units(kit):
    s = scrape(kit, kit.FakeNvml())
    lab = {"index": "0", "uuid": "GPU-00000000-fake", "name": "NVIDIA H200"}
    v = lambda metric, **more: kit.value(s, metric, **lab, **more)
    assert kit.value(s, "deeplocal_gpu_available") == 1 and kit.value(s, "deeplocal_gpu_count") == 1
    assert v("deeplocal_gpu_temperature_celsius") == 61
    assert v("deeplocal_gpu_memory_temperature_celsius") == 72
    assert v("deeplocal_gpu_memory_used_bytes") == 120_000_000_000
    assert v("deeplocal_gpu_memory_free_bytes") == 30_000_000_000
    assert v("deeplocal_gpu_memory_total_bytes") == 150_000_000_000
    assert v("deeplocal_gpu_utilization_ratio") == pytest.approx(0.87)
    assert v("deeplocal_gpu_memory_copy_utilization_ratio") == pytest.approx(0.45)
    assert v("deeplocal_gpu_power_watts") == pytest.approx(412.345)            # mW -> W
    assert v("deeplocal_gpu_power_limit_watts") == pytest.approx(700.0)
    assert v("deeplocal_gpu_energy_joules_total") == pytest.approx(9_876_543.21)  # mJ -> J
    assert v("deeplocal_gpu_sm_clock_hertz") == pytest.approx(1.98e9)           # MHz -> Hz
    assert v("deeplocal_gpu_memory_clock_hertz") == pytest.approx(2.619e9)
    assert v("deeplocal_gpu_remapped_rows", kind="correctable") == 3
    assert v("deeplocal_gpu_remapped_rows", kind="uncorrectable") == 1
    assert v("deeplocal_gpu_row_remap_pending") == 0 and v("deeplocal_gpu_row_remap_failure") == 0
    assert v("deeplocal_gpu_ecc_errors_total", kind="corrected") == 5
    assert v("deeplocal_gpu_ecc_errors_total", kind="uncorrected") == 0
    assert v("deeplocal_gpu_throttled", reason="power") == 1                    # SW power cap bit
    assert v("deeplocal_gpu_throttled", reason="thermal") == 1                  # HW thermal bit
    assert v("deeplocal_gpu_throttled", reason="hw_slowdown") == 0
    assert v("deeplocal_gpu_clock_event_reasons") == 0x44
    assert v("deeplocal_gpu_pcie_bytes_total", direction="tx") == 123_456_789
    assert v("deeplocal_gpu_pcie_bytes_total", direction="rx") == 987_654_321
    assert v("deeplocal_gpu_fan_speed_ratio") == pytest.approx(0.55)
    assert v("deeplocal_gpu_xid_errors_total") == 0
    assert len(gpu_names(s)) >= 12 + 2


def test_pcie_falls_back_to_throughput_in_kib(kit):
    nvml = kit.FakeNvml([kit.fake_gpu(0, pcie_tx_total=None, pcie_rx_total=None, mem_temp_c=None)])
    s = scrape(kit, nvml)
    assert kit.value(s, "deeplocal_gpu_pcie_throughput_bytes_per_second", direction="tx") == 2000 * 1024
    assert kit.value(s, "deeplocal_gpu_pcie_throughput_bytes_per_second", direction="rx") == 3000 * 1024
    assert "deeplocal_gpu_pcie_bytes_total" not in gpu_names(s)
    assert "deeplocal_gpu_memory_temperature_celsius" not in gpu_names(s)


def test_unsupported_queries_and_lost_gpu_spare_the_rest(kit):
    consumer = kit.fake_gpu(1, name="NVIDIA GeForce RTX 4090", fan_pct=None, remapped=None, ecc=None,
                            energy_mj=None, xid_events=False)
    lost = kit.fake_gpu(2, lost=True)
    s = scrape(kit, kit.FakeNvml([kit.fake_gpu(0), consumer, lost]))
    assert kit.value(s, "deeplocal_gpu_count") == 3
    temps = {dict(ls)["index"]: v for (n, ls), v in s.items() if n == "deeplocal_gpu_temperature_celsius"}
    assert temps == {"0": 61, "1": 61}                       # the lost GPU is left out, the others stay
    assert kit.total(s, "deeplocal_gpu_fan_speed_ratio", index="1") == 0
    assert not any(n == "deeplocal_gpu_fan_speed_ratio" and dict(ls)["index"] == "1" for (n, ls) in s)
    assert not any(n == "deeplocal_gpu_xid_errors_total" and dict(ls)["index"] == "1" for (n, ls) in s)
    assert kit.value(s, "deeplocal_gpu_power_watts", index="1") == pytest.approx(412.345)


def test_xid_events_are_counted_per_gpu(kit):
    nvml = kit.FakeNvml([kit.fake_gpu(0), kit.fake_gpu(1)])
    m = Metrics(MetricsSettings(host_metrics=False, rapl=False), backends=dict, nvml=nvml)
    m.exposition()                                            # opens NVML, registers the event set
    nvml.xid(1, 79)
    nvml.xid(1, 48)
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_gpu_xid_errors_total", index="1") == 2
    assert kit.value(s, "deeplocal_gpu_last_xid", index="1") == 48
    assert kit.value(s, "deeplocal_gpu_xid_errors_total", index="0") == 0
    nvml.xid(0, 13)
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_gpu_xid_errors_total", index="0") == 1
    assert kit.value(s, "deeplocal_gpu_xid_errors_total", index="1") == 2
    m.close()
    assert nvml.shutdown == 1 and nvml.calls.count("init") == 1


def test_init_failure_is_reported_once(kit):
    nvml = kit.FakeNvml(init_error=kit.NVMLError("Driver Not Loaded"))
    m = Metrics(MetricsSettings(host_metrics=False, rapl=False), backends=dict, nvml=nvml)
    for _ in range(3):
        s = kit.parse(m.exposition())
        assert gpu_names(s) == {"deeplocal_gpu_available"} and kit.value(s, "deeplocal_gpu_available") == 0
    assert nvml.calls.count("init") == 1 and "Driver Not Loaded" in m.gpu_reader.error
    m.close()
    assert nvml.shutdown == 0


def test_nothing_is_read_before_the_first_scrape(kit):
    nvml = kit.FakeNvml()
    calls = []
    m = Metrics(MetricsSettings(host_metrics=False, rapl=False), nvml=nvml,
                backends=lambda: calls.append("backends") or {})
    assert nvml.calls == [] and calls == []
    m.exposition()
    assert nvml.calls == ["init"] and calls == ["backends"]
