"""`deeplocal cost`: cloud API vs owned hardware, from traffic, prices, local costs and measured capacity."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from deeplocal.bench.metrics import SloParseError, parse_slo
from deeplocal.cost.capacity import CapacityError, load_capacity
from deeplocal.cost.example import example_scenario
from deeplocal.cost.live import (
    DEFAULT_LOCAL_UPSTREAMS,
    LedgerUnavailable,
    month_start,
    price_live,
    read_ledger,
)
from deeplocal.cost.power import PowerError, scrape_watts, tdp_watts
from deeplocal.cost.prices import PriceError, PriceTable
from deeplocal.cost.report import (
    PlotUnavailable,
    example_lines,
    live_dict,
    live_table,
    outcome_dict,
    plot_cumulative,
    sensitivity_tables,
    summary_lines,
    usd,
    year_table,
)
from deeplocal.cost.sensitivity import traffic_sweep, utilisation_sweep
from deeplocal.cost.tco import (
    CloudCosts,
    LocalCosts,
    Scenario,
    Traffic,
    evaluate,
    local_per_million,
    utilisation,
)

app = typer.Typer(help="Cloud API vs owned hardware: yearly costs, cost per 1M tokens, break-even.")
Opt = typer.Option


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)


def _fail(console: Console, exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


def _power(console: Console, watts: float | None, metrics_url: str | None, tdp: float | None, devices: int,
           tdp_utilisation: float, base_watts: float) -> tuple[float, str]:
    if metrics_url:
        try:
            return scrape_watts(metrics_url), f"measured at {metrics_url}"
        except PowerError as exc:
            raise _fail(console, exc) from exc
    if watts is not None:
        return watts, "given"
    if tdp is not None:
        return tdp_watts(tdp, devices, tdp_utilisation, base_watts), (
            f"{base_watts:g} W + {devices} x {tdp:g} W TDP x {tdp_utilisation:.0%}")
    return 0.0, "not given"


def _emit(console: Console, payload: dict, json_out: str | None) -> None:
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if json_out == "-":
        sys.stdout.write(text)
    elif json_out:
        Path(json_out).write_text(text, encoding="utf-8")


@app.callback(invoke_without_command=True)
def cost(
    ctx: typer.Context,
    example: Annotated[bool, Opt(help="Print the worked example (all inputs built in).")] = False,
    live: Annotated[bool, Opt(help="Month-to-date usage from the usage ledger, priced both ways.")] = False,
    requests_per_day: Annotated[float, Opt(min=0, help="Traffic: requests per day.")] = 10_000,
    prompt_tokens: Annotated[float, Opt(min=1, help="Traffic: prompt tokens per request.")] = 1_000,
    completion_tokens: Annotated[float, Opt(min=1, help="Traffic: completion tokens per request.")] = 300,
    cache_hit: Annotated[float, Opt(min=0, max=1, help="Share of prompt tokens at the cache-hit price.")] = 0.0,
    growth: Annotated[float, Opt(help="Traffic growth per year (0.5 = +50%).")] = 0.0,
    peak_to_average: Annotated[float, Opt(min=1, help="Size replicas for this multiple of mean load.")] = 2.0,
    price: Annotated[str, Opt(help="Cloud price name from the table (see `deeplocal cost prices`).")]
    = "deepseek-chat",
    price_date: Annotated[str | None, Opt(help="Use the list price in effect on this date (YYYY-MM-DD).")] = None,
    prices: Annotated[Path | None, Opt(help="Your own price table (YAML, same shape as the bundled one).")] = None,
    cloud_ops: Annotated[float, Opt(min=0, help="Cloud side: operations staff per year (USD).")] = 0.0,
    hardware_capex: Annotated[float, Opt(min=0, help="Local: hardware cost per replica (USD).")] = 0.0,
    amortization_years: Annotated[float, Opt(min=0.5, help="Local: amortization / refresh period.")] = 3.0,
    maintenance: Annotated[float, Opt(min=0, help="Local: maintenance per replica per year.")] = 0.0,
    maintenance_from_year: Annotated[int, Opt(min=1, help="First year maintenance is paid.")] = 2,
    power_watts: Annotated[float | None, Opt(min=0, help="Local: average draw per replica (W).")] = None,
    power_from_metrics: Annotated[str | None, Opt(help="Measure watts from a deeplocal /metrics URL.")] = None,
    tdp_watts_per_device: Annotated[float | None, Opt("--tdp-watts", help="Estimate power: TDP per device.")]
    = None,
    devices: Annotated[int, Opt(min=1, help="Devices per replica for the TDP estimate.")] = 1,
    tdp_utilisation: Annotated[float, Opt(min=0, max=1, help="Share of TDP drawn on average.")] = 0.6,
    base_watts: Annotated[float, Opt(min=0, help="Host draw besides the devices (W) for the estimate.")] = 0.0,
    pue: Annotated[float, Opt(min=1, help="Power usage effectiveness of the room.")] = 1.0,
    electricity: Annotated[float, Opt(min=0, help="Electricity price per kWh (USD).")] = 0.0,
    dev_cost: Annotated[float, Opt(min=0, help="Local: development staff per year (USD).")] = 0.0,
    dev_years: Annotated[int, Opt(min=0, help="Years of development before operations.")] = 1,
    ops_cost: Annotated[float, Opt(min=0, help="Local: operations staff per year after development.")] = 0.0,
    bench: Annotated[Path | None, Opt(help="`deeplocal bench --json` result giving local capacity.")] = None,
    slo: Annotated[str | None, Opt(help="SLO the capacity must meet, e.g. ttft=500ms,tpot=50ms "
                                        "(default: the bench run's).")] = None,
    capacity: Annotated[float | None, Opt(min=0.001, help="Output tok/s per replica (e.g. the planner's "
                                                          "estimate) instead of --bench.")] = None,
    replicas: Annotated[int | None, Opt(min=1, help="Fix the replica count instead of sizing it.")] = None,
    util: Annotated[float | None, Opt("--utilisation", min=0.01, max=1,
                                      help="Utilisation for cost per 1M tokens (default: from traffic).")] = None,
    years: Annotated[int, Opt(min=1, max=20, help="Horizon in years.")] = 3,
    database_url: Annotated[str | None, Opt(envvar="DEEPLOCAL_DATABASE_URL", help="--live: ledger database.")]
    = None,
    local_upstreams: Annotated[str, Opt(help="--live: upstream names that are local (comma-separated).")]
    = ",".join(DEFAULT_LOCAL_UPSTREAMS),
    upstream_price: Annotated[list[str] | None, Opt(help="--live: UPSTREAM=PRICE_NAME, repeatable.")] = None,
    json_out: Annotated[str | None, Opt("--json", help="Write JSON to this path ('-' for stdout).")] = None,
    plot: Annotated[Path | None, Opt(help="Write cumulative cost curves to this PNG ([plot] extra).")] = None,
    sensitivity: Annotated[bool, Opt(help="Show the utilisation and traffic sweeps.")] = True,
) -> None:
    """Compare a cloud API with owned hardware; `--example` prints the worked example."""
    if ctx.invoked_subcommand is not None:
        return
    console = _console(stderr=json_out == "-")
    try:
        table = PriceTable.load(prices)
        on = date.fromisoformat(price_date) if price_date else None
        slo_obj = parse_slo(slo)
        cap = load_capacity(bench, slo_obj).output_tokens_per_s if bench else capacity
    except (PriceError, ValueError, SloParseError, CapacityError) as exc:
        raise _fail(console, exc) from exc
    if example:
        scenario = example_scenario()
        power_note = "billed inside maintenance in the example"
    else:
        try:
            cloud_price = table.get(price, on)
        except PriceError as exc:
            raise _fail(console, exc) from exc
        watts, power_note = _power(console, power_watts, power_from_metrics, tdp_watts_per_device, devices,
                                   tdp_utilisation, base_watts)
        scenario = Scenario(
            traffic=Traffic(requests_per_day=requests_per_day, prompt_tokens=prompt_tokens,
                            completion_tokens=completion_tokens, cache_hit_ratio=cache_hit,
                            growth_per_year=growth, peak_to_average=peak_to_average),
            cloud=CloudCosts(price=cloud_price, operations_per_year=cloud_ops),
            local=LocalCosts(hardware_capex=hardware_capex, amortization_years=amortization_years,
                             maintenance_per_year=maintenance, maintenance_from_year=maintenance_from_year,
                             power_watts=watts, pue=pue, electricity_per_kwh=electricity,
                             development_per_year=dev_cost, development_years=dev_years,
                             operations_per_year=ops_cost),
            capacity_tokens_per_s=cap, replicas=replicas, years=years)
    if live:
        _live(console, scenario, table, database_url, local_upstreams, upstream_price or [], util, json_out)
        return
    outcome = evaluate(scenario, util)
    utils, traffic = utilisation_sweep(scenario), traffic_sweep(scenario)
    console.print(year_table(outcome))
    lines = summary_lines(scenario, outcome)
    lines.append(f"Power per replica: {scenario.local.power_watts:,.0f} W ({power_note})")
    if example:
        lines = [*example_lines(outcome), *lines]
    for line in lines:
        console.print(line, highlight=False)
    if sensitivity:
        for t in sensitivity_tables(utils, traffic):
            console.print(t)
    _emit(console, outcome_dict(scenario, outcome, utils, traffic), json_out)
    if plot is not None:
        try:
            plot_cumulative(outcome, plot)
        except PlotUnavailable as exc:
            raise _fail(console, exc) from exc


def _live(console: Console, scenario: Scenario, table: PriceTable, database_url: str | None,
          local_upstreams: str, upstream_price: list[str], util: float | None, json_out: str | None) -> None:
    if not database_url:
        from deeplocal.config import ConfigError, load_settings

        try:
            data_dir = load_settings().data_dir
        except ConfigError as exc:
            raise _fail(console, exc) from exc
        database_url = f"sqlite:///{Path(data_dir).expanduser() / 'deeplocal.db'}"
    since = month_start(datetime.now(UTC))
    try:
        mapping = dict(item.split("=", 1) for item in upstream_price)
    except ValueError as exc:
        raise _fail(console, ValueError("--upstream-price takes UPSTREAM=PRICE_NAME")) from exc
    try:
        rows = read_ledger(database_url, since)
    except LedgerUnavailable as exc:
        raise _fail(console, exc) from exc
    u = util if util is not None else utilisation(scenario)
    per_m = local_per_million(scenario, u, all_in=True) if u else None
    report = price_live(rows, since=since, table=table, reference=scenario.cloud.price, local_per_million=per_m,
                        local_upstreams=tuple(x.strip() for x in local_upstreams.split(",") if x.strip()),
                        upstream_prices=mapping, cache_hit_ratio=scenario.traffic.cache_hit_ratio)
    console.print(live_table(report))
    console.print(f"as cloud: at {scenario.cloud.price.name}; as local: "
                  + (f"{usd(per_m, 3)} per 1M tokens" if per_m else "needs --bench or --capacity"), highlight=False)
    _emit(console, live_dict(report), json_out)


@app.command("prices")
def list_prices(
    prices: Annotated[Path | None, Opt(help="A price table file instead of the bundled one.")] = None,
    all_dates: Annotated[bool, Opt("--all", help="Every dated entry, not only the current ones.")] = False,
    json_out: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """Show the cloud price table (USD per 1M tokens)."""
    from rich.table import Table

    console = _console()
    try:
        entries = list(PriceTable.load(prices).prices) if all_dates else PriceTable.load(prices).current()
    except PriceError as exc:
        raise _fail(console, exc) from exc
    if json_out:
        typer.echo(json.dumps([{**{k: getattr(p, k) for k in ("name", "provider", "input_hit", "input_miss",
                                                               "output", "note", "source")},
                                "since": p.since.isoformat()} for p in entries], indent=2))
        return
    t = Table(title="Cloud prices, USD per 1M tokens", title_justify="left")
    for name in ("name", "provider", "since", "input hit", "input miss", "output", "note"):
        t.add_column(name)
    for p in entries:
        t.add_row(p.name, p.provider, p.since.isoformat(), f"{p.input_hit:g}", f"{p.input_miss:g}",
                  f"{p.output:g}", p.note)
    console.print(t)
