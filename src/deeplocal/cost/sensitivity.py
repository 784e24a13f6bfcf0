"""Sensitivity sweeps over utilisation and traffic volume. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace

from deeplocal.cost.tco import Scenario, evaluate, local_per_million, year_rows

UTILISATIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
TRAFFIC_FACTORS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True, slots=True)
class UtilisationPoint:
    utilisation: float
    local_hardware_per_million: float | None
    local_all_in_per_million: float | None


@dataclass(frozen=True, slots=True)
class TrafficPoint:
    factor: float
    requests_per_day: float
    replicas: int
    cloud_total: float                  # over the scenario's years
    local_total: float
    break_even_month: int | None


def utilisation_sweep(s: Scenario, points: tuple[float, ...] = UTILISATIONS) -> list[UtilisationPoint]:
    return [UtilisationPoint(u, local_per_million(s, u, all_in=False), local_per_million(s, u, all_in=True))
            for u in points]


def traffic_sweep(s: Scenario, factors: tuple[float, ...] = TRAFFIC_FACTORS) -> list[TrafficPoint]:
    out = []
    for factor in factors:
        scaled = replace(s, traffic=replace(s.traffic, requests_per_day=s.traffic.requests_per_day * factor))
        rows = year_rows(scaled)
        out.append(TrafficPoint(
            factor=factor,
            requests_per_day=scaled.traffic.requests_per_day,
            replicas=max(r.replicas for r in rows),
            cloud_total=sum(r.cloud_total for r in rows),
            local_total=sum(r.local_total for r in rows),
            break_even_month=evaluate(scaled).break_even_month,
        ))
    return out
