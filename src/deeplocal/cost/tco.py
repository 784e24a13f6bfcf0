"""Cloud API vs owned hardware: year-by-year cash costs, break-even, cost per million tokens. Pure.

Cash basis for the year table: hardware is paid when bought (year 1, when traffic needs another replica,
and again after `amortization_years` to refresh it). Cost per million tokens and the break-even daily
volume use steady-state annual costs: hardware spread over `amortization_years`, after development.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from deeplocal.cost.prices import Price

SECONDS_PER_DAY = 86_400.0
HOURS_PER_YEAR = 8_760.0
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class Traffic:
    requests_per_day: float
    prompt_tokens: float                 # per request
    completion_tokens: float             # per request
    cache_hit_ratio: float = 0.0         # share of prompt tokens billed at the cache-hit price
    growth_per_year: float = 0.0         # 0.5: +50% requests per day each year
    peak_to_average: float = 1.0         # provision replicas for this multiple of the mean load

    def requests_per_day_in(self, year: int) -> float:
        return self.requests_per_day * (1.0 + self.growth_per_year) ** (year - 1)

    @property
    def tokens_per_request(self) -> float:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class CloudCosts:
    price: Price
    operations_per_year: float = 0.0     # staff to integrate and operate the API use


@dataclass(frozen=True, slots=True)
class LocalCosts:
    hardware_capex: float                # per replica (one server with its accelerators)
    amortization_years: float = 3.0
    maintenance_per_year: float = 0.0    # per replica
    maintenance_from_year: int = 2       # year 1 under warranty
    power_watts: float = 0.0             # per replica, average draw at the wall before PUE
    pue: float = 1.0
    electricity_per_kwh: float = 0.0
    development_per_year: float = 0.0    # staff building it
    development_years: int = 1
    operations_per_year: float = 0.0     # staff running it once built

    @property
    def power_per_replica_year(self) -> float:
        return self.power_watts / 1000.0 * HOURS_PER_YEAR * self.pue * self.electricity_per_kwh

    def staff_in(self, year: int) -> float:
        return self.development_per_year if year <= self.development_years else self.operations_per_year

    @property
    def replica_year(self) -> float:
        """Steady-state cost of one replica per year: amortized hardware, maintenance, power."""
        return (self.hardware_capex / self.amortization_years + self.maintenance_per_year
                + self.power_per_replica_year)


@dataclass(frozen=True, slots=True)
class Scenario:
    traffic: Traffic
    cloud: CloudCosts
    local: LocalCosts
    capacity_tokens_per_s: float | None = None   # output tokens/s one replica sustains at the SLO
    replicas: int | None = None                  # fixed replica count (overrides capacity sizing)
    years: int = 3


@dataclass(frozen=True, slots=True)
class YearRow:
    year: int
    requests_per_day: float
    replicas: int
    cloud_api: float
    cloud_staff: float
    local_hardware: float
    local_maintenance: float
    local_power: float
    local_staff: float

    @property
    def cloud_total(self) -> float:
        return self.cloud_api + self.cloud_staff

    @property
    def local_total(self) -> float:
        return self.local_hardware + self.local_maintenance + self.local_power + self.local_staff


@dataclass(frozen=True, slots=True)
class Outcome:
    years: tuple[YearRow, ...]
    monthly_cloud: tuple[float, ...] = field(repr=False)   # cumulative, month 1..12*years
    monthly_local: tuple[float, ...] = field(repr=False)
    break_even_month: int | None
    break_even_requests_per_day: float | None
    cloud_api_per_million: float
    cloud_all_in_per_million: float
    local_hardware_per_million: float | None
    local_all_in_per_million: float | None
    utilisation: float | None


def cost_per_request(traffic: Traffic, price: Price) -> float:
    return price.cost(traffic.prompt_tokens, traffic.completion_tokens, traffic.cache_hit_ratio)


def replicas_needed(traffic: Traffic, capacity_tokens_per_s: float, requests_per_day: float) -> int:
    """Replicas whose output-token capacity covers the peak demand (at least one)."""
    if capacity_tokens_per_s <= 0:
        raise ValueError("capacity must be > 0 tokens/s")
    peak = requests_per_day * traffic.completion_tokens / SECONDS_PER_DAY * traffic.peak_to_average
    return max(1, math.ceil(peak / capacity_tokens_per_s - 1e-9))


def _replicas(s: Scenario, year: int) -> int:
    if s.replicas is not None:
        return s.replicas
    if s.capacity_tokens_per_s is None:
        return 1
    return replicas_needed(s.traffic, s.capacity_tokens_per_s, s.traffic.requests_per_day_in(year))


def year_rows(s: Scenario) -> tuple[YearRow, ...]:
    lifetime = max(1, round(s.local.amortization_years))
    bought: list[int] = []               # purchase year of each replica in service
    rows = []
    for year in range(1, s.years + 1):
        rpd = s.traffic.requests_per_day_in(year)
        refresh = sum(1 for b in bought if year - b >= lifetime)
        bought = [year if year - b >= lifetime else b for b in bought]
        need = _replicas(s, year)
        added = max(0, need - len(bought))
        bought += [year] * added
        in_service = len(bought)
        rows.append(YearRow(
            year=year,
            requests_per_day=rpd,
            replicas=in_service,
            cloud_api=cost_per_request(s.traffic, s.cloud.price) * rpd * DAYS_PER_YEAR,
            cloud_staff=s.cloud.operations_per_year,
            local_hardware=(refresh + added) * s.local.hardware_capex,
            local_maintenance=(in_service * s.local.maintenance_per_year
                               if year >= s.local.maintenance_from_year else 0.0),
            local_power=in_service * s.local.power_per_replica_year,
            local_staff=s.local.staff_in(year),
        ))
    return tuple(rows)


def cumulative_monthly(rows: tuple[YearRow, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Cumulative cloud and local spend at the end of each month; hardware is paid in a year's first month."""
    cloud, local, c_sum, l_sum = [], [], 0.0, 0.0
    for row in rows:
        for month in range(12):
            c_sum += row.cloud_total / 12.0
            l_sum += (row.local_total - row.local_hardware) / 12.0 + (row.local_hardware if month == 0 else 0.0)
            cloud.append(c_sum)
            local.append(l_sum)
    return tuple(cloud), tuple(local)


def break_even_month(cloud: tuple[float, ...], local: tuple[float, ...]) -> int | None:
    """First month (1-based) whose cumulative local spend is at or below the cloud's; None if never."""
    for month, (c, lo) in enumerate(zip(cloud, local), start=1):
        if lo <= c + 1e-6:
            return month
    return None


def break_even_requests_per_day(s: Scenario, max_replicas: int = 10_000) -> float | None:
    """Smallest requests/day at which steady-state local costs no more than the cloud per year."""
    per_request_year = cost_per_request(s.traffic, s.cloud.price) * DAYS_PER_YEAR
    if per_request_year <= 0:
        return None
    fixed_local = s.local.operations_per_year - s.cloud.operations_per_year
    if s.replicas is not None or s.capacity_tokens_per_s is None:
        n = s.replicas or 1
        return max(0.0, (n * s.local.replica_year + fixed_local) / per_request_year)
    per_replica_rpd = (s.capacity_tokens_per_s * SECONDS_PER_DAY
                       / (s.traffic.completion_tokens * s.traffic.peak_to_average))
    for n in range(1, max_replicas + 1):
        low, high = (n - 1) * per_replica_rpd, n * per_replica_rpd
        volume = max(low, (n * s.local.replica_year + fixed_local) / per_request_year, 0.0)
        if volume <= high:
            return volume
    return None


def utilisation(s: Scenario, year: int = 1) -> float | None:
    """Mean output-token demand over the fleet's capacity."""
    if s.capacity_tokens_per_s is None:
        return None
    demand = s.traffic.requests_per_day_in(year) * s.traffic.completion_tokens / SECONDS_PER_DAY
    return demand / (_replicas(s, year) * s.capacity_tokens_per_s)


def local_per_million(s: Scenario, util: float, *, all_in: bool) -> float | None:
    """Local USD per 1M tokens (prompt + completion, the traffic's mix) at fleet utilisation `util`."""
    if s.capacity_tokens_per_s is None or util <= 0:
        return None
    n = _replicas(s, 1)
    output_per_year = n * s.capacity_tokens_per_s * util * SECONDS_PER_DAY * DAYS_PER_YEAR
    tokens = output_per_year * s.traffic.tokens_per_request / s.traffic.completion_tokens
    cost = n * s.local.replica_year + (s.local.operations_per_year if all_in else 0.0)
    return cost / tokens * 1e6


def evaluate(s: Scenario, util: float | None = None) -> Outcome:
    """Everything `deeplocal cost` prints, from the scenario; `util` overrides the traffic's utilisation."""
    rows = year_rows(s)
    cloud, local = cumulative_monthly(rows)
    u = util if util is not None else utilisation(s)
    tokens_year1 = s.traffic.requests_per_day * s.traffic.tokens_per_request * DAYS_PER_YEAR
    api_per_m = cost_per_request(s.traffic, s.cloud.price) / s.traffic.tokens_per_request * 1e6
    return Outcome(
        years=rows,
        monthly_cloud=cloud,
        monthly_local=local,
        break_even_month=break_even_month(cloud, local),
        break_even_requests_per_day=break_even_requests_per_day(s),
        cloud_api_per_million=api_per_m,
        cloud_all_in_per_million=api_per_m + (s.cloud.operations_per_year / tokens_year1 * 1e6
                                              if tokens_year1 else 0.0),
        local_hardware_per_million=None if u is None else local_per_million(s, u, all_in=False),
        local_all_in_per_million=None if u is None else local_per_million(s, u, all_in=True),
        utilisation=u,
    )
