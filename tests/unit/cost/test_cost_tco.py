"""The cost model: the worked example to the dollar, break-even, sizing, refresh, per-million costs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deeplocal.cost.example import example_scenario
from deeplocal.cost.prices import Price
from deeplocal.cost.sensitivity import traffic_sweep, utilisation_sweep
from deeplocal.cost.tco import (
    CloudCosts,
    LocalCosts,
    Scenario,
    Traffic,
    break_even_requests_per_day,
    evaluate,
    replicas_needed,
    year_rows,
)


def test_worked_example_reproduces_exactly():
    rows = year_rows(example_scenario())
    y1, y2, y3 = rows
    assert (y1.cloud_api, y1.cloud_staff, y1.cloud_total) == (87_600, 24_000, 111_600)
    assert (y1.local_hardware, y1.local_staff, y1.local_maintenance, y1.local_power) == (48_000, 36_000, 0, 0)
    assert y1.local_total == 84_000
    assert (y2.local_hardware, y2.local_maintenance, y2.local_staff, y2.local_total) == (0, 12_000, 18_000, 30_000)
    assert y2.cloud_total == y3.cloud_total == 111_600 and y3.local_total == 30_000
    assert {r.replicas for r in rows} == {1}


def test_worked_example_break_even_and_per_million():
    out = evaluate(example_scenario())
    # Month m of year 1: local 48,000 + 3,000 m vs cloud 9,300 m -> first m >= 7.62 is month 8.
    assert out.break_even_month == 8
    assert out.monthly_local[6] > out.monthly_cloud[6] and out.monthly_local[7] <= out.monthly_cloud[7]
    # Steady state: local 16,000 + 12,000 + 18,000 = 46,000/yr vs cloud 0.0075 $/req x 365 x V + 24,000.
    assert out.break_even_requests_per_day == pytest.approx(22_000 / (0.0075 * 365))
    # API: $240/day over 48M tokens/day = $5 per 1M tokens.
    assert out.cloud_api_per_million == pytest.approx(5.0)
    assert out.cloud_all_in_per_million == pytest.approx(5.0 + 24_000 / (48e6 * 365) * 1e6)
    # Utilisation: 32,000 x 500 / 86,400 = 185.19 tok/s of 1,000.
    assert out.utilisation == pytest.approx(32_000 * 500 / 86_400 / 1_000)
    tokens_per_year = 1_000 * out.utilisation * 86_400 * 365 * 3
    assert out.local_hardware_per_million == pytest.approx(28_000 / tokens_per_year * 1e6)
    assert out.local_all_in_per_million == pytest.approx(46_000 / tokens_per_year * 1e6)


def _scenario(**traffic) -> Scenario:
    price = Price(name="p", input_hit=0.1, input_miss=1.0, output=10.0)
    t = Traffic(requests_per_day=100_000, prompt_tokens=1_000, completion_tokens=250, **traffic)
    local = LocalCosts(hardware_capex=100_000, amortization_years=2, maintenance_per_year=5_000,
                       maintenance_from_year=1, power_watts=1_000, pue=1.5, electricity_per_kwh=0.2,
                       development_per_year=10_000, operations_per_year=20_000)
    return Scenario(traffic=t, cloud=CloudCosts(price=price), local=local, capacity_tokens_per_s=200.0, years=4)


def test_cache_hits_and_power_are_priced():
    s = _scenario(cache_hit_ratio=0.5)
    row = year_rows(s)[0]
    per_request = (1_000 * (0.5 * 0.1 + 0.5 * 1.0) + 250 * 10.0) / 1e6
    assert row.cloud_api == pytest.approx(per_request * 100_000 * 365)
    assert row.local_power == pytest.approx(row.replicas * 1.0 * 8_760 * 1.5 * 0.2)


def test_growth_buys_replicas_and_refresh_rebuys_them():
    s = _scenario(growth_per_year=1.0)      # doubles each year
    rows = year_rows(s)
    # 100,000 x 250 / 86,400 = 289.4 tok/s -> 2 replicas of 200; then 579 -> 3, 1157 -> 6, 2315 -> 12.
    assert [r.replicas for r in rows] == [2, 3, 6, 12]
    # Year 3: the two year-1 replicas are 2 years old (refreshed) and three more are bought;
    # year 4: the year-2 replica is refreshed and six more are bought.
    assert [r.local_hardware for r in rows] == [200_000, 100_000, 500_000, 700_000]
    assert [r.local_staff for r in rows] == [10_000, 20_000, 20_000, 20_000]


def test_replicas_follow_peak_factor():
    t = Traffic(requests_per_day=86_400, prompt_tokens=10, completion_tokens=100, peak_to_average=2.0)
    assert replicas_needed(t, 1.0, t.requests_per_day) == 200
    assert replicas_needed(t, 100.0, t.requests_per_day) == 2
    assert replicas_needed(t, 20_000.0, t.requests_per_day) == 1


def test_break_even_volume_with_stepwise_replicas():
    s = _scenario()
    volume = break_even_requests_per_day(s)
    assert volume is not None
    at = evaluate(replace(s, traffic=replace(s.traffic, requests_per_day=volume)))
    steady_cloud = at.years[-1].cloud_total
    n = at.years[0].replicas
    steady_local = n * s.local.replica_year + s.local.operations_per_year
    assert steady_local == pytest.approx(steady_cloud, rel=1e-9) or steady_local < steady_cloud
    below = replace(s, traffic=replace(s.traffic, requests_per_day=volume * 0.99))
    n_below = evaluate(below).years[0].replicas
    assert n_below * s.local.replica_year + s.local.operations_per_year > evaluate(below).years[-1].cloud_total


def test_no_break_even_when_local_marginal_cost_is_higher():
    s = _scenario()
    cheap = replace(s, cloud=CloudCosts(price=Price(name="c", input_hit=0, input_miss=0.001, output=0.001)))
    assert break_even_requests_per_day(cheap, max_replicas=50) is None
    assert evaluate(cheap).break_even_month is None


def test_sensitivity_sweeps():
    s = example_scenario()
    utils = utilisation_sweep(s, (0.25, 0.5))
    assert utils[0].local_all_in_per_million == pytest.approx(2 * utils[1].local_all_in_per_million)
    points = traffic_sweep(s, (0.5, 1.0, 2.0))
    assert [p.requests_per_day for p in points] == [16_000, 32_000, 64_000]
    assert points[1].cloud_total == 3 * 111_600 and points[1].local_total == 84_000 + 2 * 30_000
    assert points[0].break_even_month is None or points[0].break_even_month > points[2].break_even_month
