"""Price table lookups by date, capacity from bench JSON, power readings, and live pricing of the ledger."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from deeplocal.bench.metrics import parse_slo
from deeplocal.cost.capacity import CapacityError, capacity_from_bench, load_capacity
from deeplocal.cost.live import LedgerUnavailable, UsageRow, month_start, price_live, read_ledger
from deeplocal.cost.power import PowerError, measured_watts, tdp_watts
from deeplocal.cost.prices import Price, PriceError, PriceTable


def test_bundled_table_is_dated():
    table = PriceTable.load()
    assert {"deepseek-chat", "deepseek-reasoner", "gpt-4o-mini"} <= set(table.names())
    assert table.get("deepseek-chat", date(2025, 3, 1)).input_miss == 0.27
    assert table.get("deepseek-chat", date(2025, 9, 10)).input_miss == 0.56
    assert table.get("deepseek-chat").since >= date(2025, 9, 29)
    with pytest.raises(PriceError, match="no price for 'deepseek-chat' on 2020-01-01"):
        table.get("deepseek-chat", date(2020, 1, 1))


def test_price_cost_with_cache_hits():
    p = Price(name="x", input_hit=0.1, input_miss=1.0, output=4.0)
    assert p.cost(1_000_000, 500_000, cache_hit_ratio=0.25) == pytest.approx(0.25 * 0.1 + 0.75 + 2.0)


def test_user_table_errors_name_the_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("prices:\n  - name: a\n    input_hit: 1\n")
    with pytest.raises(PriceError, match="p.yaml"):
        PriceTable.load(bad)


def _bench(levels):
    return {"schema": "deeplocal.bench/1", "metadata": {"slo_ms": {"ttft": 500.0}}, "levels": levels}


def _level(c, tput, ttft_p90, tpot_p90, failed=0):
    return {"concurrency": c, "completed": 10, "failed": failed, "output_throughput": tput,
            "ttft": {"p90_ms": ttft_p90}, "tpot": {"p90_ms": tpot_p90}}


def test_capacity_is_the_best_level_meeting_the_slo(tmp_path):
    levels = [_level(1, 40, 100, 20), _level(4, 90, 300, 40), _level(16, 150, 2_000, 90),
              _level(64, 400, 100, 10, failed=3)]
    cap = capacity_from_bench(_bench(levels), parse_slo("ttft=500ms,tpot=50ms"))
    assert (cap.output_tokens_per_s, cap.concurrency) == (90, 4)
    assert capacity_from_bench(_bench(levels), parse_slo("")).output_tokens_per_s == 150
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_bench(levels)))
    assert load_capacity(path, parse_slo("")).concurrency == 4      # the run's own SLO (ttft 500 ms)
    with pytest.raises(CapacityError, match="meets the SLO"):
        capacity_from_bench(_bench(levels), parse_slo("ttft=10ms"))


GPU = ('# TYPE deeplocal_gpu_power_watts gauge\n'
       'deeplocal_gpu_power_watts{index="0",uuid="a",name="H100"} 350.5\n'
       'deeplocal_gpu_power_watts{index="1",uuid="b",name="H100"} 300.0\n')


def _cpu(joules):
    return ('# TYPE deeplocal_cpu_energy_joules_total counter\n'
            f'deeplocal_cpu_energy_joules_total{{package="0"}} {joules}\n')


def test_power_from_metrics_and_tdp():
    assert measured_watts(GPU, GPU, 5) == pytest.approx(650.5)
    assert measured_watts(_cpu(1000), _cpu(1500), 5) == pytest.approx(100.0)
    assert measured_watts(GPU + _cpu(0), GPU + _cpu(50), 1) == pytest.approx(700.5)
    with pytest.raises(PowerError):
        measured_watts("# nothing\n", "# nothing\n", 5)
    assert tdp_watts(700, 8, 0.5, base_watts=400) == 3_200


def test_price_live_splits_remote_and_local():
    table = PriceTable.load()
    since = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [UsageRow("deepseek", "deepseek-chat", 10, 2_000_000, 1_000_000),
            UsageRow("local", "smollm2", 5, 1_000_000, 1_000_000)]
    ref = Price(name="ref", input_hit=1.0, input_miss=1.0, output=2.0)
    report = price_live(rows, since=since, table=table, reference=ref, local_per_million=0.5)
    remote, local = report.lines
    assert remote.remote and remote.price_name == "deepseek-chat"
    assert remote.spent == pytest.approx(2 * 0.28 + 1 * 0.42)
    assert not local.remote and local.spent == 0 and local.price_name is None
    assert remote.as_cloud == pytest.approx(2 + 2) and local.as_cloud == pytest.approx(1 + 2)
    assert report.as_local == pytest.approx(3 * 0.5 + 2 * 0.5)
    mapped = price_live(rows[:1], since=since, table=table, reference=ref, local_per_million=None,
                        upstream_prices={"deepseek": "gpt-4o-mini"})
    assert mapped.lines[0].price_name == "gpt-4o-mini" and mapped.as_local is None


def test_month_start():
    assert month_start(datetime(2026, 11, 28, 21, 5, tzinfo=UTC)) == datetime(
        2026, 11, 1, tzinfo=UTC)


def test_read_ledger_without_a_database(tmp_path):
    with pytest.raises(LedgerUnavailable, match="does not exist"):
        read_ledger(f"sqlite:///{tmp_path / 'none.db'}", datetime(2026, 11, 1, tzinfo=UTC))
    assert not (tmp_path / "none.db").exists()


def test_read_ledger_from_a_real_sqlite_ledger(tmp_path):
    ledger = pytest.importorskip("deeplocal.gateway.ledger")
    from deeplocal.store.db import make_engine, write_transaction
    from deeplocal.store.migrations import migrate

    url = f"sqlite:///{tmp_path / 'deeplocal.db'}"
    engine = make_engine(url)
    migrate(engine)
    since = datetime(2026, 11, 1, tzinfo=UTC)
    with write_transaction(engine) as conn:
        for ts, tenant, upstream, p, c in [(since.timestamp() - 10, "a", "deepseek", 999, 999),
                                           (since.timestamp() + 10, "a", "deepseek", 100, 50),
                                           (since.timestamp() + 20, "b", "deepseek", 200, 70),
                                           (since.timestamp() + 30, "a", "local", 10, 5)]:
            ledger.append(conn, ledger.UsageRecord(ts=ts, key_id="k", tenant=tenant, model="deepseek-chat",
                                                   upstream=upstream, prompt_tokens=p, completion_tokens=c,
                                                   status="ok"))
    engine.dispose()
    rows = read_ledger(url, since)
    assert rows == [UsageRow("deepseek", "deepseek-chat", 2, 300, 120), UsageRow("local", "deepseek-chat", 1, 10, 5)]


def test_power_from_a_real_prometheus_exposition():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def __init__(self, joules: float):
            self.joules = joules

        def collect(self):
            gauge = GaugeMetricFamily("deeplocal_gpu_power_watts", "Power draw.", labels=["index"])
            gauge.add_metric(["0"], 250.0)
            yield gauge
            counter = CounterMetricFamily("deeplocal_cpu_energy_joules", "Energy.", labels=["package"])
            counter.add_metric(["0"], self.joules)
            yield counter

    def scrape(joules: float) -> str:
        registry = CollectorRegistry()
        registry.register(Collector(joules))
        return generate_latest(registry).decode()

    assert measured_watts(scrape(100.0), scrape(400.0), 2.0) == pytest.approx(250.0 + 150.0)
