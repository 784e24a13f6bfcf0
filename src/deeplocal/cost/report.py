"""Formatting for `deeplocal cost`: rich tables, a JSON document, and cumulative cost curves."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from rich.table import Table

from deeplocal.cost.live import LiveReport
from deeplocal.cost.sensitivity import TrafficPoint, UtilisationPoint
from deeplocal.cost.tco import Outcome, Scenario


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def usd(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"${value:,.{digits}f}"


def year_table(outcome: Outcome) -> Table:
    table = Table(title="Year by year (cash)", title_justify="left")
    for name in ("year", "req/day", "replicas", "cloud API", "cloud staff", "cloud total", "local hardware",
                 "local maint.", "local power", "local staff", "local total", "cum. cloud", "cum. local"):
        table.add_column(name, justify="right")
    cum_c = cum_l = 0.0
    for row in outcome.years:
        cum_c += row.cloud_total
        cum_l += row.local_total
        table.add_row(str(row.year), f"{row.requests_per_day:,.0f}", str(row.replicas), usd(row.cloud_api),
                      usd(row.cloud_staff), usd(row.cloud_total), usd(row.local_hardware),
                      usd(row.local_maintenance), usd(row.local_power), usd(row.local_staff),
                      usd(row.local_total), usd(cum_c), usd(cum_l))
    return table


def summary_lines(s: Scenario, outcome: Outcome) -> list[str]:
    p = s.cloud.price
    since = "" if p.since.year <= 1970 else f" (since {p.since})"
    lines = [
        (f"Cloud price: {p.name}{since}: ${p.input_hit:g} hit / ${p.input_miss:g} miss / "
         f"${p.output:g} output per 1M tokens"),
        (f"Cost per 1M tokens, cloud: {usd(outcome.cloud_api_per_million, 3)} API, "
         f"{usd(outcome.cloud_all_in_per_million, 3)} with staff"),
    ]
    if outcome.utilisation is None:
        lines.append("Cost per 1M tokens, local: needs capacity (--bench RESULT.json or --capacity TOK/S)")
    else:
        lines.append(f"Cost per 1M tokens, local at {outcome.utilisation:.1%} utilisation: "
                     f"{usd(outcome.local_hardware_per_million, 3)} hardware+power, "
                     f"{usd(outcome.local_all_in_per_million, 3)} with operations staff")
    month = outcome.break_even_month
    lines.append("Break-even: " + (f"month {month}" if month else f"not within {s.years} years"))
    volume = outcome.break_even_requests_per_day
    lines.append("Break-even daily volume (steady state): "
                 + (f"{volume:,.0f} requests/day" if volume is not None else "none: local never cheaper"))
    replicas = max(r.replicas for r in outcome.years)
    sizing = (f"from {s.capacity_tokens_per_s:,.1f} output tok/s per replica at the SLO, peak x"
              f"{s.traffic.peak_to_average:g}" if s.capacity_tokens_per_s and s.replicas is None
              else "as given")
    lines.append(f"Replicas needed: {replicas} ({sizing})")
    return lines


def example_lines(outcome: Outcome) -> list[str]:
    """The worked example in words, each sum computed from the year table."""
    y1, y2 = outcome.years[0], outcome.years[1]
    return [
        f"Cloud: {usd(y1.cloud_api)} API fees + {usd(y1.cloud_staff)} operations = {usd(y1.cloud_total)} per year",
        (f"Local year 1: {usd(y1.local_hardware)} hardware + {usd(y1.local_staff)} development "
         f"= {usd(y1.local_total)}"),
        (f"Local year 2: {usd(y2.local_maintenance)} maintenance + {usd(y2.local_staff)} operations "
         f"= {usd(y2.local_total)}"),
    ]


def sensitivity_tables(utils: list[UtilisationPoint], traffic: list[TrafficPoint]) -> list[Table]:
    tables = []
    if any(p.local_all_in_per_million is not None for p in utils):
        t = Table(title="Local cost per 1M tokens vs utilisation", title_justify="left")
        for name in ("utilisation", "hardware+power", "with ops staff"):
            t.add_column(name, justify="right")
        for p in utils:
            t.add_row(f"{p.utilisation:.0%}", usd(p.local_hardware_per_million, 3), usd(p.local_all_in_per_million, 3))
        tables.append(t)
    t = Table(title="Traffic sensitivity (totals over the horizon)", title_justify="left")
    for name in ("traffic", "req/day", "replicas", "cloud total", "local total", "break-even month"):
        t.add_column(name, justify="right")
    for p in traffic:
        t.add_row(f"x{p.factor:g}", f"{p.requests_per_day:,.0f}", str(p.replicas), usd(p.cloud_total),
                  usd(p.local_total), str(p.break_even_month or "-"))
    tables.append(t)
    return tables


def live_table(report: LiveReport) -> Table:
    t = Table(title=f"Month to date since {report.since:%Y-%m-%d} (UTC)", title_justify="left")
    for name in ("upstream", "model", "remote", "requests", "prompt tok", "completion tok", "spent",
                 "price", "as cloud", "as local"):
        t.add_column(name, justify="left" if name in ("upstream", "model", "price") else "right")
    for line in report.lines:
        t.add_row(line.upstream, line.model, "yes" if line.remote else "no", f"{line.requests:,}",
                  f"{line.prompt_tokens:,}", f"{line.completion_tokens:,}", usd(line.spent, 2),
                  line.price_name or "-", usd(line.as_cloud, 2), usd(line.as_local, 2))
    t.add_row("total", "", "", "", "", "", usd(report.spent, 2), "", usd(report.as_cloud, 2),
              usd(report.as_local, 2))
    return t


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def outcome_dict(s: Scenario, outcome: Outcome, utils: list[UtilisationPoint],
                 traffic: list[TrafficPoint]) -> dict[str, Any]:
    years = [{**asdict(r), "cloud_total": r.cloud_total, "local_total": r.local_total} for r in outcome.years]
    return _jsonable({
        "schema": "deeplocal.cost/1",
        "inputs": asdict(s),
        "years": years,
        "break_even_month": outcome.break_even_month,
        "break_even_requests_per_day": outcome.break_even_requests_per_day,
        "replicas": max(r.replicas for r in outcome.years),
        "utilisation": outcome.utilisation,
        "cost_per_million": {
            "cloud_api": outcome.cloud_api_per_million,
            "cloud_all_in": outcome.cloud_all_in_per_million,
            "local_hardware": outcome.local_hardware_per_million,
            "local_all_in": outcome.local_all_in_per_million,
        },
        "cumulative_monthly": {"cloud": list(outcome.monthly_cloud), "local": list(outcome.monthly_local)},
        "sensitivity": {"utilisation": [asdict(p) for p in utils], "traffic": [asdict(p) for p in traffic]},
    })


def live_dict(report: LiveReport) -> dict[str, Any]:
    return {"schema": "deeplocal.cost.live/1", "since": report.since.isoformat(),
            "lines": [asdict(line) for line in report.lines],
            "totals": {"spent": report.spent, "as_cloud": report.as_cloud, "as_local": report.as_local}}


def plot_cumulative(outcome: Outcome, path: Path, title: str = "Cumulative cost") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'deeplocal[plot]'") from exc
    months = list(range(1, len(outcome.monthly_cloud) + 1))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(months, outcome.monthly_cloud, label="cloud API")
    ax.plot(months, outcome.monthly_local, label="local")
    if outcome.break_even_month:
        ax.axvline(outcome.break_even_month, linestyle="--", color="grey")
        ax.annotate(f"break-even: month {outcome.break_even_month}", (outcome.break_even_month, 0),
                    textcoords="offset points", xytext=(4, 10), fontsize=8)
    ax.set_xlabel("month")
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
