"""Engine metrics from Backend.stats(), breaker states, host CPU/RAM and RAPL package energy."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from deeplocal.engine.types import BackendStats
from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.energy import RaplReader
from deeplocal.metrics.registry import Metrics


class StatsBackend:
    """Just the `stats()` part of the Backend protocol, which is all the engine collector reads."""

    def __init__(self, stats: BackendStats | None):
        self._stats = stats

    def stats(self) -> BackendStats:
        if self._stats is None:
            raise RuntimeError("engine is restarting")
        return self._stats


def settings(**over) -> MetricsSettings:
    base = {"gpu": False, "host_metrics": False, "rapl": False}
    return MetricsSettings(**(base | over))


def test_engine_stats_are_read_at_scrape_time(kit):
    backends = {"local": StatsBackend(BackendStats(
        waiting=3, running=5, kv_used=300, kv_total=1200, prefix_hit_tokens=40, prefix_query_tokens=160,
        preemptions=2, prompt_tokens_total=900, generation_tokens_total=450, generation_tokens_per_s=41.5)),
        "broken": StatsBackend(None)}
    m = Metrics(settings(), backends=lambda: backends)
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_engine_requests_waiting", upstream="local") == 3
    assert kit.value(s, "deeplocal_engine_requests_running", upstream="local") == 5
    assert kit.value(s, "deeplocal_engine_kv_cache_usage_ratio", upstream="local") == pytest.approx(0.25)
    assert kit.value(s, "deeplocal_engine_prefix_cache_hit_ratio", upstream="local") == pytest.approx(0.25)
    assert kit.value(s, "deeplocal_engine_preemptions_total", upstream="local") == 2
    assert kit.value(s, "deeplocal_engine_generation_tokens_total", upstream="local") == 450
    assert kit.value(s, "deeplocal_engine_generation_tokens_per_second", upstream="local") == 41.5
    assert kit.value(s, "deeplocal_engine_up", upstream="local") == 1
    assert kit.value(s, "deeplocal_engine_up", upstream="broken") == 0
    assert kit.total(s, "deeplocal_engine_requests_waiting", upstream="broken") == 0
    backends["local"] = StatsBackend(BackendStats(waiting=7, healthy=False))
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_engine_requests_waiting", upstream="local") == 7
    assert kit.value(s, "deeplocal_engine_up", upstream="local") == 0


def test_breaker_states(kit):
    states = {"deepseek-api": "open", "local": "closed"}
    m = Metrics(settings(), backends=dict, breakers=lambda: states)
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_upstream_breaker_state", upstream="deepseek-api", state="open") == 1
    assert kit.value(s, "deeplocal_upstream_breaker_state", upstream="deepseek-api", state="closed") == 0
    assert kit.value(s, "deeplocal_upstream_breaker_state", upstream="local", state="closed") == 1


def test_host_metrics_match_psutil(kit):
    m = Metrics(settings(host_metrics=True), backends=dict)
    s = kit.parse(m.exposition())
    total = psutil.virtual_memory().total
    assert kit.value(s, "deeplocal_host_memory_total_bytes") == total
    assert 0 < kit.value(s, "deeplocal_host_memory_available_bytes") <= total
    assert kit.value(s, "deeplocal_host_cpu_count") == psutil.cpu_count()
    assert kit.value(s, "deeplocal_host_cpu_seconds_total", mode="idle") > 0
    assert kit.value(s, "deeplocal_process_resident_memory_bytes") > 10_000_000


def write_zone(root: Path, zone: str, name: str, energy_uj: int, max_uj: int) -> Path:
    path = root / zone
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(name + "\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    return path


def test_rapl_accumulates_across_wraparound(tmp_path, kit):
    pkg = write_zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, 1_000_000_000)
    write_zone(tmp_path, "intel-rapl:0:0", "core", 5, 1_000_000_000)      # subzone: not a package
    m = Metrics(settings(rapl=True, rapl_root=tmp_path), backends=dict)
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_cpu_energy_available") == 1
    assert kit.value(s, "deeplocal_cpu_energy_joules_total", package="package-0:0") == 0
    (pkg / "energy_uj").write_text("999500000\n")                          # +0.5 J
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_cpu_energy_joules_total", package="package-0:0") == pytest.approx(0.5)
    (pkg / "energy_uj").write_text("250000000\n")                   # wrapped: +0.500001 J to the top, +250 J
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_cpu_energy_joules_total",
                     package="package-0:0") == pytest.approx(0.5 + 0.500001 + 250.0, abs=1e-9)
    assert len([n for (n, _) in s if n == "deeplocal_cpu_energy_joules_total"]) == 1


def test_rapl_absent_or_unreadable(tmp_path, kit):
    s = kit.parse(Metrics(settings(rapl=True, rapl_root=tmp_path / "nope"), backends=dict).exposition())
    assert kit.value(s, "deeplocal_cpu_energy_available") == 0
    bad = tmp_path / "intel-rapl:0"
    (bad / "energy_uj").mkdir(parents=True)                                # reading it raises an OSError
    (bad / "name").write_text("package-0")
    (bad / "max_energy_range_uj").write_text("100")
    assert RaplReader(tmp_path).read_joules() == {}
