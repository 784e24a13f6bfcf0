"""`deeplocal plan`: memory, hardware, speed and engine settings for a model. Formatting only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deeplocal.planner.errors import PlannerError
from deeplocal.planner.gpus import GPUS, Device, cpu_device, gpu_from_name
from deeplocal.planner.memory import GIB
from deeplocal.planner.plan import DeviceOption, PlanRequest, PlanResult, plan
from deeplocal.planner.precisions import KV_DTYPES, PRECISIONS
from deeplocal.planner.readers import read_model_file
from deeplocal.planner.specs import MODELS, model_from_name

app = typer.Typer(help="Plan memory, GPUs, speed and engine settings for a model.", add_completion=False,
                  context_settings={"allow_interspersed_args": True})

MATRIX_MODELS = ("deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-qwen-14b", "deepseek-r1-distill-qwen-32b",
                 "deepseek-r1-distill-llama-70b", "deepseek-v3")


def _devices(names: list[str], *, ram: float | None, bw: float | None, tflops: float | None,
             cores: int | None) -> tuple[Device, ...]:
    out: list[Device] = []
    for name in names:
        for part in name.split(","):
            if part.strip().lower() != "cpu":
                out.append(gpu_from_name(part))
            elif ram and bw:
                out.append(cpu_device(ram_gib=ram, bandwidth_gbs=bw, tflops=tflops or 1.0, cores=cores or 8))
            else:
                from deeplocal.planner.probe import measure_cpu

                out.append(measure_cpu())
    return tuple(out)


def _gib(n: float) -> str:
    return f"{n / GIB:,.1f}"


def _row(o: DeviceOption) -> list[str]:
    f = o.fit
    par = f"TP{f.tp}" + (f" PP{f.pp}" if f.pp > 1 and not f.layer_split else "")
    if f.layer_split and f.n_devices > 1:
        par = "layer split"
    count = f"{f.n_devices} ({par})" if f.n_devices > 1 else "1"
    fits = "yes" if o.fits and not f.offload_to else (f"offload ({f.offload_to})" if o.fits else "no")
    speed = (f"{o.decode_single.tokens_per_s_per_seq:,.0f}", f"{o.decode_target.aggregate_tokens_per_s:,.0f}",
             f"{o.prefill.seconds:,.2f}") if o.fits else ("-", "-", "-")
    return [o.device.name, count, o.engine, fits,
            f"{_gib(o.memory.used)}/{_gib(o.memory.budget)}", str(f.max_concurrency), *speed,
            f"${o.price_usd:,}" if o.price_usd else "-"]


def _print_plan(console: Console, result: PlanResult) -> None:
    r = result.request
    console.print(f"[bold]{r.model.name}[/] {result.params_total / 1e9:,.2f}B params "
                  f"({result.params_active / 1e9:,.2f}B active), {result.precision.name}, KV {r.kv_dtype}, "
                  f"context {r.context:,} x {r.concurrency} sequence(s)")
    console.print(f"weights {_gib(result.weights_bytes)} GiB + KV {_gib(result.kv_bytes_target)} GiB "
                  f"({result.kv_bytes_per_token / 1024:,.1f} KiB/token) = "
                  f"{_gib(result.weights_bytes + result.kv_bytes_target)} GiB before overheads")
    table = Table(title="smallest fitting layout per device type", caption="GiB/dev: used/budget per device; "
                  "seqs: max sequences at this context; tok/s: one sequence; xN: aggregate at N")
    for col in ("device", "count", "engine", "fits", "GiB/dev", "seqs", "tok/s", f"x{r.concurrency}",
                "TTFT s", "price"):
        table.add_column(col, justify="right" if col not in ("device", "engine", "fits") else "left")
    for o in result.options:
        table.add_row(*_row(o))
    console.print(table)
    rec = result.recommended
    if rec is None:
        console.print("[red]nothing fits[/]: raise --max-nodes, lower --context/--concurrency or pick a "
                      "smaller precision")
    else:
        console.print(f"recommended: [bold]{rec.label}[/] ({rec.engine})")
        if rec.engine == "vllm":
            console.print("  " + rec.settings.command_line(r.source or r.model.hf_repo or r.model.name))
        else:
            console.print("  llama.cpp: " + ", ".join(f"{k}={v}" for k, v in rec.settings.llamacpp.items()))
        for note in rec.notes:
            console.print(f"  note: {note}")
    for line in result.estimates:
        console.print(f"[dim]estimate: {line}[/]")


def _print_matrix(console: Console, results: list[PlanResult], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([x.to_dict() for x in results], indent=2))
        return
    table = Table(title="plan matrix (recommended: fewest nodes, then cheapest, that fits)")
    for col in ("model", "precision", "weights+KV GiB", "recommended", "tok/s (1 seq)", "agg tok/s", "TTFT s"):
        table.add_column(col)
    for res in results:
        rec = res.recommended
        cells = [rec.label, f"{rec.decode_single.tokens_per_s_per_seq:,.0f}",
                 f"{rec.decode_target.aggregate_tokens_per_s:,.0f}",
                 f"{rec.prefill.seconds:,.2f}"] if rec else ["nothing fits", "-", "-", "-"]
        table.add_row(res.request.model.name, res.precision.name,
                      _gib(res.weights_bytes + res.kv_bytes_target), *cells)
    console.print(table)


def _print_lists(console: Console) -> None:
    console.print("models: " + ", ".join(m.name for m in MODELS))
    console.print("devices: " + ", ".join(g.name for g in GPUS) + ", cpu")
    console.print("precisions: " + ", ".join(p.name for p in PRECISIONS))
    console.print("kv dtypes: " + ", ".join(k.name for k in KV_DTYPES))


@app.callback(invoke_without_command=True)
def plan_command(
    model: Annotated[str | None, typer.Argument(help="Model name (see --list).")] = None,
    precision: Annotated[list[str] | None, typer.Option("--precision", "-p",
                         help="Weight precision (repeat for --matrix). Default: the model's native.")] = None,
    kv_dtype: Annotated[str, typer.Option(help="KV cache dtype: fp16, fp8, q8_0, q4_0.")] = "fp16",
    context: Annotated[int, typer.Option("--context", "-c", help="Tokens per sequence.")] = 8192,
    concurrency: Annotated[int, typer.Option("--concurrency", "-n", help="Concurrent sequences.")] = 1,
    prompt_tokens: Annotated[int | None, typer.Option(help="Prompt length for TTFT.")] = None,
    output_tokens: Annotated[int, typer.Option(help="Output length per request.")] = 256,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", "-g", help="Device type(s); 'cpu' too.")] = None,
    from_config: Annotated[Path | None, typer.Option(help="A config.json, model folder or .gguf.")] = None,
    matrix: Annotated[bool, typer.Option(help="Several models x precisions at once.")] = False,
    models: Annotated[str | None, typer.Option(help="Comma-separated models for --matrix.")] = None,
    max_nodes: Annotated[int, typer.Option(help="Most nodes to pipeline across.")] = 4,
    gpus_per_node: Annotated[int | None, typer.Option(help="Cap on devices per node.")] = None,
    gpu_memory_utilization: Annotated[float, typer.Option(help="vLLM's memory fraction.")] = 0.90,
    host_ram_gib: Annotated[float, typer.Option(help="Host RAM available for offload.")] = 512.0,
    cpu_ram_gib: Annotated[float | None, typer.Option(help="CPU-only: RAM (else measured).")] = None,
    cpu_bandwidth_gbs: Annotated[float | None, typer.Option(help="CPU-only: memory GB/s.")] = None,
    cpu_tflops: Annotated[float | None, typer.Option(help="CPU-only: matmul TFLOP/s.")] = None,
    cpu_cores: Annotated[int | None, typer.Option(help="CPU-only: cores (threads).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    emit: Annotated[str | None, typer.Option(help="'config': print a deeplocal.yaml for the pick.")] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List models, devices and precisions.")] = False,
) -> None:
    """Memory needed, the GPUs that fit, expected speed and engine settings."""
    console = Console(width=None if Console().is_terminal else 140)
    if list_all:
        _print_lists(console)
        return
    try:
        devices = _devices(gpu or [], ram=cpu_ram_gib, bw=cpu_bandwidth_gbs, tflops=cpu_tflops, cores=cpu_cores)
        common: dict[str, object] = {
            "kv_dtype": kv_dtype, "context": context, "concurrency": concurrency, "prompt_tokens": prompt_tokens,
            "output_tokens": output_tokens, "devices": devices, "gpu_memory_utilization": gpu_memory_utilization,
            "max_devices_per_node": gpus_per_node, "max_nodes": max_nodes, "host_ram_gib": host_ram_gib,
        }
        if cpu_bandwidth_gbs:
            common["host_bandwidth_gbs"] = cpu_bandwidth_gbs
        if matrix:
            names = [m.strip() for m in (models or ",".join(MATRIX_MODELS)).split(",") if m.strip()]
            precs = precision or ["bf16", "fp8", "q4_k_m"]
            results = [plan(PlanRequest(model_from_name(n), precision=p, **common))  # type: ignore[arg-type]
                       for n in names for p in precs]
            _print_matrix(console, results, as_json)
            return
        custom = None
        source = ""
        if from_config:
            mf = read_model_file(from_config)
            spec, custom, source = mf.spec, mf.precision, str(from_config)
        else:
            spec = model_from_name(model or "deepseek-r1-distill-qwen-7b")
        prec = (precision or [spec.native_dtype if spec.native_dtype in ("bf16", "fp8", "fp16") else "bf16"])[0]
        result = plan(PlanRequest(spec, precision=prec, custom_precision=custom if not precision else None,
                                  source=source, **common))  # type: ignore[arg-type]
    except PlannerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if emit is not None:
        if emit != "config":
            typer.echo("error: --emit takes 'config'", err=True)
            raise typer.Exit(2)
        pick = result.recommended or (result.options[0] if result.options else None)
        if pick is None:
            typer.echo("error: no option to emit", err=True)
            raise typer.Exit(1)
        typer.echo(pick.config_yaml, nl=False)
        return
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print_plan(console, result)
