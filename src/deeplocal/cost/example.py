"""The worked example `deeplocal cost --example` prints, and the test checks to the dollar.

Cloud: 32,000 requests/day x (1,000 prompt + 500 completion tokens) at $2.50 / $10.00 per 1M tokens
(input miss / output, no cache hits) = $240/day = $87,600/year, plus $24,000/year of operations staff.
Local: one $48,000 server (its capacity, 1,000 output tok/s at the SLO, covers 3x the mean load);
$36,000 of development staff in year 1; from year 2, $12,000/year maintenance (year 1 is under
warranty) and $18,000/year operations staff. Power is billed inside the colocation maintenance here,
so it is zero in the example.
"""

from __future__ import annotations

from deeplocal.cost.prices import Price
from deeplocal.cost.tco import CloudCosts, LocalCosts, Scenario, Traffic

EXAMPLE_PRICE = Price(name="example-api", input_hit=2.50, input_miss=2.50, output=10.00,
                      note="worked example; flat prices so the arithmetic can be checked by hand")


def example_scenario() -> Scenario:
    return Scenario(
        traffic=Traffic(requests_per_day=32_000, prompt_tokens=1_000, completion_tokens=500,
                        cache_hit_ratio=0.0, growth_per_year=0.0, peak_to_average=3.0),
        cloud=CloudCosts(price=EXAMPLE_PRICE, operations_per_year=24_000),
        local=LocalCosts(hardware_capex=48_000, amortization_years=3, maintenance_per_year=12_000,
                         maintenance_from_year=2, power_watts=0.0, development_per_year=36_000,
                         development_years=1, operations_per_year=18_000),
        capacity_tokens_per_s=1_000.0,
        years=3,
    )
