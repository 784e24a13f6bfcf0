"""`deeplocal bench`: measure any OpenAI-compatible endpoint; print a report table, write JSON and a plot."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deeplocal.bench.datasets import DatasetError, LengthSpec, load_prompts
from deeplocal.bench.load import ClientOptions, DiscoveryError, LoadLevel, discover_model, run_level, warm_up
from deeplocal.bench.metrics import SloParseError, parse_slo
from deeplocal.bench.report import (
    SCHEMA,
    PlotUnavailable,
    RunInfo,
    describe_host,
    markdown_table,
    plot_results,
    render_table,
    result_dict,
)
from deeplocal.bench.stream import Target


def _console(*, stderr: bool = False) -> Console:
    """Wide enough for the report table when output is not a terminal (files, CI logs)."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)


app = typer.Typer(help="Benchmark an OpenAI-compatible endpoint (TTFT, TPOT, ITL, E2E, throughput, goodput).")


def _numbers(text: str, kind: type, name: str) -> list:
    try:
        values = [kind(math.inf if v.strip() in ("inf", "") and kind is float else v) for v in text.split(",")]
    except ValueError as exc:
        raise typer.BadParameter(f"{name}: comma-separated numbers expected, got '{text}'") from exc
    if any(v <= 0 for v in values):
        raise typer.BadParameter(f"{name}: values must be > 0")
    return values


def _levels(concurrency: str | None, rate: str, burstiness: float) -> list[LoadLevel]:
    rates = _numbers(rate, float, "--rate")
    conc: list[int | None] = _numbers(concurrency, int, "--concurrency") if concurrency else [None]
    if conc == [None] and rates == [math.inf]:
        conc = [1]
    return [LoadLevel(concurrency=c, rate=r, burstiness=burstiness) for r in rates for c in conc]


async def _run_all(target: Target, prompts, warmup_prompts, levels, options, seed, show_progress, console):
    if warmup_prompts:
        await warm_up(target, warmup_prompts, options)
    done = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not show_progress, transient=False) as progress:
        for level in levels:
            task = progress.add_task(level.label(), total=len(prompts))
            done.append(await run_level(target, prompts, level, options, seed=seed,
                                        on_result=lambda _r, t=task: progress.advance(t)))
    return done


Opt = typer.Option


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    url: Annotated[str, Opt(help="Base URL of the endpoint, ending in /v1.")] = "http://127.0.0.1:8000/v1",
    model: Annotated[str | None, Opt(help="Model id; default: the first one GET /models lists.")] = None,
    api_key: Annotated[str | None, Opt(envvar=["DEEPLOCAL_API_KEY", "OPENAI_API_KEY"], show_envvar=True,
                                       help="Bearer key, if the endpoint needs one.")] = None,
    endpoint: Annotated[str, Opt(help="chat (/chat/completions) or completions (/completions).")] = "chat",
    concurrency: Annotated[str | None, Opt(help="Concurrency sweep, e.g. 1,4,16,64 "
                                                "(default 1; with --rate it caps in-flight requests).")] = None,
    rate: Annotated[str, Opt(help="Arrival rate(s) in requests/s, e.g. 2 or 1,2,4; inf sends at once.")] = "inf",
    burstiness: Annotated[float, Opt(min=0.01, help="Gamma shape of arrivals: 1 Poisson, <1 burstier.")] = 1.0,
    requests: Annotated[int, Opt(min=1, help="Requests per level (hard cap).")] = 32,
    max_duration: Annotated[float, Opt(min=0.1, help="Seconds per level (hard cap); "
                                                     "in-flight requests are cancelled.")] = 300.0,
    warmup: Annotated[int, Opt(min=0, help="Warm-up requests before measuring (discarded).")] = 2,
    dataset: Annotated[str, Opt(help="random, bundled, bundled-en, bundled-zh, "
                                     "or a ShareGPT-style .json/.jsonl path.")] = "bundled",
    input_len: Annotated[str, Opt(help="Prompt words for --dataset random: N or LOW-HIGH.")] = "128",
    output_len: Annotated[str, Opt(help="max_tokens per request: N or LOW-HIGH (uniform).")] = "128",
    ignore_eos: Annotated[bool, Opt(help="Send ignore_eos so every request generates max_tokens "
                                         "(turn off for APIs that reject unknown fields).")] = True,
    slo: Annotated[str | None, Opt(help="SLOs for goodput, e.g. ttft=500ms,tpot=50ms (also itl, e2e).")] = None,
    timeout: Annotated[float, Opt(min=0.1, help="Per-request timeout in seconds.")] = 600.0,
    new_connection: Annotated[bool, Opt("--new-connection/--reuse-connection",
                                        help="Open a new connection per request (llama-server needs it).")] = False,
    seed: Annotated[int, Opt(help="Seed for prompts, lengths and arrivals.")] = 0,
    precision: Annotated[str, Opt(help="Precision label for the report (e.g. Q4_1, bf16, fp8).")] = "unknown",
    hardware: Annotated[str | None, Opt(help="Hardware label; default: this machine "
                                             "when the URL is loopback.")] = None,
    json_out: Annotated[str | None, Opt("--json", help="Write results as JSON to this path "
                                                       "('-' for stdout).")] = None,
    plot: Annotated[Path | None, Opt(help="Write latency-vs-throughput curves to this PNG "
                                          "(needs the [plot] extra).")] = None,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
    markdown: Annotated[bool, Opt(help="Print the table as Markdown (for a report).")] = False,
) -> None:
    """Run a concurrency sweep or arrival-rate load and report vLLM-style serving metrics."""
    if ctx.invoked_subcommand is not None:
        return
    console = _console(stderr=json_out == "-")
    if endpoint not in ("chat", "completions"):
        raise typer.BadParameter("--endpoint must be chat or completions")
    try:
        slo_obj = parse_slo(slo)
        out_spec, in_spec = LengthSpec.parse(output_len), LengthSpec.parse(input_len)
        prompts = load_prompts(dataset, count=requests, output_len=out_spec, input_len=in_spec, seed=seed)
        warm = load_prompts(dataset, count=warmup, output_len=LengthSpec(8, 8), input_len=in_spec,
                            seed=seed + 1) if warmup else []
        model_id = model or asyncio.run(discover_model(url, api_key))
    except (SloParseError, DatasetError, DiscoveryError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    target = Target(base_url=url, model=model_id, endpoint=endpoint, api_key=api_key, ignore_eos=ignore_eos)
    options = ClientOptions(timeout_s=timeout, new_connection=new_connection, max_duration_s=max_duration)
    levels = _levels(concurrency, rate, burstiness)
    show = progress and console.is_terminal
    done = asyncio.run(_run_all(target, prompts, warm, levels, options, seed, show, console))
    info = RunInfo(url=url, model=model_id, precision=precision, hardware=hardware or describe_host(url),
                   endpoint=endpoint, dataset=dataset, input_len=str(in_spec) if dataset == "random" else "-",
                   output_len=str(out_spec), requests_per_level=requests, warmup=warmup,
                   new_connection=new_connection, slo=slo_obj)
    result = result_dict(info, done)
    if markdown:
        typer.echo(markdown_table([result]), nl=False, err=json_out == "-")
    else:
        console.print(render_table([result]))
    if json_out == "-":
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    elif json_out:
        Path(json_out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if plot is not None:
        try:
            plot_results([result], plot)
        except PlotUnavailable as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    if not any(level["completed"] for level in result["levels"]):
        console.print("[red]every request failed[/red]: see the error column")
        raise typer.Exit(1)




@app.command("report")
def report(
    results: Annotated[list[Path], typer.Argument(help="`deeplocal bench --json` files to show together.")],
    markdown: Annotated[bool, Opt(help="Print Markdown instead of a rich table.")] = False,
    plot: Annotated[Path | None, Opt(help="Write their latency-vs-throughput curves to this PNG.")] = None,
) -> None:
    """Show saved results side by side (e.g. ours vs another server), as a table and a plot."""
    console = _console()
    try:
        loaded = [json.loads(path.read_text(encoding="utf-8")) for path in results]
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    bad = [str(p) for p, r in zip(results, loaded) if not isinstance(r, dict) or r.get("schema") != SCHEMA]
    if bad:
        console.print(f"[red]error:[/red] not deeplocal bench results: {', '.join(bad)}")
        raise typer.Exit(2)
    if markdown:
        typer.echo(markdown_table(loaded), nl=False)
    else:
        console.print(render_table(loaded))
    if plot is not None:
        try:
            plot_results(loaded, plot)
        except PlotUnavailable as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
