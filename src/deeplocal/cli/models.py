"""`deeplocal models ...`: the local model store, import/pull, convert, quantize, eval and compare."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from deeplocal.errors import DeeplocalError

app = typer.Typer(help="Manage local models: store, import, pull, convert, quantize, evaluate, compare.",
                  no_args_is_help=True)

ModelsDir = Annotated[Path | None, typer.Option("--models-dir", help="Model store folder "
                      "[default: $DEEPLOCAL_MODELS_DIR or <data_dir>/models]")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def models_dir(explicit: Path | None) -> Path:
    if explicit:
        return explicit.expanduser()
    if os.environ.get("DEEPLOCAL_MODELS_DIR"):
        return Path(os.environ["DEEPLOCAL_MODELS_DIR"]).expanduser()
    from deeplocal.config import load_settings

    settings = load_settings()
    configured = getattr(settings, "models_dir", None)
    return Path(configured).expanduser() if configured else settings.data_dir / "models"


def fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@contextmanager
def byte_progress(description: str, total: int | None, *, enabled: bool = True) -> Iterator:
    """A rich progress bar; yields a callback taking bytes advanced (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def human_params(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


@app.command("list")
def list_models(models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """List the models in the store (the bundled model appears once used or registered)."""
    from rich.console import Console
    from rich.table import Table

    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    manifests = store.list()
    if as_json:
        typer.echo(json.dumps([m.model_dump() for m in manifests], indent=2))
        return
    if not manifests:
        typer.echo(f"no models in {store.root}; try `deeplocal models import PATH` or `models pull REPO`")
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    for name in ("format", "arch", "params", "quant"):
        table.add_column(name)
    table.add_column("size", no_wrap=True, justify="right")
    for m in manifests:
        table.add_row(m.id, m.format, m.architecture, human_params(m.parameters), m.quantization,
                      human_size(m.size_bytes))
    Console().print(table)


@app.command("info")
def info(model: Annotated[str, typer.Argument(help="Store id, catalog name or path")],
         models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Show a model's manifest (and its path)."""
    from deeplocal.models.resolve import resolve_model

    try:
        resolved = resolve_model(model, store_dir=models_dir(models_dir_))
    except DeeplocalError as exc:
        raise fail(exc) from exc
    data = resolved.manifest.model_dump() | {"path": str(resolved.path)}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if key == "files":
            for entry in value:
                typer.echo(f"  file: {entry['name']}  {human_size(entry['size'])}  sha256 {entry['sha256']}")
        elif value is not None:
            typer.echo(f"{key:>15}: {value}")


@app.command("rm")
def remove(model_id: Annotated[str, typer.Argument(help="Store id")], models_dir_: ModelsDir = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
    """Remove a model from the store (files registered in place are left alone)."""
    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    try:
        manifest = store.get(model_id)
        if not yes:
            typer.confirm(f"remove {model_id} ({human_size(manifest.size_bytes)})?", abort=True)
        store.remove(model_id)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    typer.echo(f"removed {model_id}")


@app.command("verify")
def verify(model_id: Annotated[str, typer.Argument(help="Store id")], models_dir_: ModelsDir = None) -> None:
    """Re-hash a model's files and compare them with the sha256s in its manifest."""
    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    try:
        manifest = store.get(model_id)
        with byte_progress(f"verifying {model_id}", sum(f.size for f in manifest.files)) as progress:
            problems = store.verify(model_id, progress)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    if problems:
        raise fail(ValueError(f"{model_id} is damaged: " + "; ".join(problems)))
    typer.echo(f"{model_id}: {len(manifest.files)} file(s) match the manifest")


@app.command("import")
def import_(path: Annotated[Path, typer.Argument(help="A .gguf file or a Hugging Face model folder")],
            model_id: Annotated[str | None, typer.Option("--id", help="Store id [default: from name]")] = None,
            link: Annotated[bool, typer.Option("--link", help="Register in place, do not copy.")] = False,
            license_: Annotated[str | None, typer.Option("--license", help="Licence, if not in the file.")]
            = None,
            replace: Annotated[bool, typer.Option("--replace", help="Replace an existing id.")] = False,
            models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Import a GGUF file or a Hugging Face folder into the store (copied and sha256-hashed)."""
    from deeplocal.models.importer import import_path
    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    total = sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path.is_dir() else (
        path.stat().st_size if path.exists() else None)
    try:
        with byte_progress(f"importing {path.name}", total, enabled=not as_json) as progress:
            manifest = import_path(store, path, model_id=model_id, link=link, license=license_,
                                   replace=replace, progress=progress)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
    else:
        typer.echo(f"imported {manifest.id}: {manifest.format} {manifest.architecture} "
                   f"{manifest.quantization} {human_size(manifest.size_bytes)} sha256 {manifest.sha256[:16]}…")


@app.command("pull")
def pull_(repo: Annotated[str, typer.Argument(help="ORG/NAME[@REVISION] on the hub (HF_ENDPOINT for a mirror)")],
          include: Annotated[list[str] | None, typer.Option("--include", help="Glob of files to fetch, "
                             "e.g. '*Q4_K_M.gguf' (repeatable)")] = None,
          model_id: Annotated[str | None, typer.Option("--id", help="Store id [default: from the repo]")] = None,
          replace: Annotated[bool, typer.Option("--replace", help="Replace an existing id.")] = False,
          models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Download a model from a Hugging Face hub: resumable, sha256-verified. With HF_HUB_OFFLINE=1 it
    takes the model from the local Hugging Face cache instead."""
    from deeplocal.models.hub import RepoSpec
    from deeplocal.models.pull import pull
    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    try:
        spec = RepoSpec.parse(repo)
        with _file_bars(enabled=not as_json) as (on_plan, progress):
            manifest = pull(store, spec, include=tuple(include or ()), model_id=model_id, replace=replace,
                            progress=progress, on_plan=on_plan)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
    else:
        typer.echo(f"pulled {manifest.id} ({manifest.source}, revision {manifest.revision}): "
                   f"{manifest.quantization} {human_size(manifest.size_bytes)}, sha256 verified")


@contextmanager
def _file_bars(*, enabled: bool) -> Iterator:
    """(on_plan, progress) callbacks driving one rich bar per file."""
    if not enabled:
        yield (None, None)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn()) as bar:
        tasks: dict[str, int] = {}

        def on_plan(files) -> None:
            for f in files:
                tasks[f.name] = bar.add_task(f.name, total=f.size)

        def progress(name: str, n: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.advance(tasks[name], n)

        yield on_plan, progress


@app.command("quantize")
def quantize_(model: Annotated[str, typer.Argument(help="Store id (or path) of an F32/F16/BF16 GGUF")],
              qtype: Annotated[str, typer.Argument(help="Q8_0, Q6_K, Q5_K_M, Q4_K_M or Q4_0")],
              model_id: Annotated[str | None, typer.Option("--id", help="Store id [default: <base>-<type>]")]
              = None,
              imatrix: Annotated[Path | None, typer.Option("--imatrix", help="Importance matrix (GGUF, "
                                 "from llama-imatrix)")] = None,
              threads: Annotated[int, typer.Option("--threads", min=1, help="Quantization threads")] = 1,
              replace: Annotated[bool, typer.Option("--replace", help="Replace an existing id.")] = False,
              models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Quantize a GGUF with llama.cpp's own quantizer into a new store entry."""
    from deeplocal.models.quantize import quantize_model
    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    try:
        if not as_json:
            typer.echo(f"quantizing {model} to {qtype.upper()} with {threads} thread(s)…", err=True)
        manifest = quantize_model(store, model, qtype, model_id=model_id, imatrix_path=imatrix,
                                  n_threads=threads, replace=replace)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
    else:
        typer.echo(f"created {manifest.id}: {manifest.quantization} {human_size(manifest.size_bytes)}")


def _eval_config(ctx: int, threads: int, no_mc: bool):
    from deeplocal.models.evaluate import EvalConfig

    return EvalConfig(n_ctx=ctx, n_threads=threads, mc=not no_mc)


CtxOpt = Annotated[int, typer.Option("--ctx", min=64, help="Perplexity window (tokens)")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="llama.cpp threads")]
NoMcOpt = Annotated[bool, typer.Option("--no-mc", help="Skip the multiple-choice set.")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Ignore cached results.")]


@app.command("eval")
def eval_(model: Annotated[str, typer.Argument(help="Store id, catalog name or GGUF path")],
          ctx: CtxOpt = 512, threads: ThreadsOpt = 1, no_mc: NoMcOpt = False, fresh: FreshOpt = False,
          models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Perplexity (en + zh held-out text), multiple-choice accuracy, size, RSS, KV/token, tokens/s."""
    from deeplocal.models.eval_store import evaluate_model
    from deeplocal.models.store import ModelStore

    try:
        with _spinner(f"evaluating {model}", enabled=not as_json):
            report = evaluate_model(ModelStore(models_dir(models_dir_)), model,
                                    config=_eval_config(ctx, threads, no_mc), use_cache=not fresh)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(report.to_json())
        return
    typer.echo(f"model {report.model} ({report.quantization}), eval set {report.eval_set}, n_ctx {report.n_ctx}")
    for lang, value in report.perplexity.items():
        typer.echo(f"  perplexity {lang}: {value:.3f} over {report.ppl_tokens[lang]} tokens")
    if report.accuracy is not None:
        typer.echo(f"  multiple choice: {100 * report.accuracy:.1f}% of {report.accuracy_items}")
    kv = f"{report.kv_bytes_per_token / 1024:.1f} KiB" if report.kv_bytes_per_token else "?"
    typer.echo(f"  file {human_size(report.file_bytes)}, resident {human_size(report.rss_bytes)}, KV/token {kv}")
    typer.echo(f"  prefill {report.prefill_tps:.1f} tok/s, decode {report.decode_tps:.1f} tok/s "
               f"({report.n_threads} thread(s))")


@contextmanager
def _spinner(text: str, *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield


@app.command("compare")
def compare_(models: Annotated[list[str], typer.Argument(help="Two or more models; the first is the baseline")],
             ctx: CtxOpt = 512, threads: ThreadsOpt = 1, no_mc: NoMcOpt = False, fresh: FreshOpt = False,
             models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Compare models against the first: memory reduction %, accuracy retained %, speed-up."""
    from dataclasses import asdict

    from deeplocal.models.compare import compare, render_markdown
    from deeplocal.models.eval_store import evaluate_model
    from deeplocal.models.store import ModelStore

    if len(models) < 2:
        raise fail(ValueError("give at least two models"))
    store = ModelStore(models_dir(models_dir_))
    config = _eval_config(ctx, threads, no_mc)
    try:
        reports = []
        for name in models:
            with _spinner(f"evaluating {name}", enabled=not as_json):
                reports.append(evaluate_model(store, name, config=config, use_cache=not fresh))
        rows = compare(reports)
    except (DeeplocalError, ValueError) as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        typer.echo(render_markdown(rows))


@app.command("convert")
def convert_(model: Annotated[str, typer.Argument(help="Store id or Hugging Face folder (safetensors)")],
             outtype: Annotated[str, typer.Option("--outtype", help="F16, BF16 or F32")] = "F16",
             model_id: Annotated[str | None, typer.Option("--id", help="Store id [default: <id>-<type>]")]
             = None,
             pre: Annotated[str | None, typer.Option("--pre", help="llama.cpp pre-tokenizer name when it "
                            "cannot be recognised (llama-bpe, qwen2, deepseek-r1-qwen, smollm, gpt-2)")] = None,
             replace: Annotated[bool, typer.Option("--replace", help="Replace an existing id.")] = False,
             models_dir_: ModelsDir = None, as_json: JsonOut = False) -> None:
    """Convert Hugging Face safetensors (llama, qwen2) to a GGUF for llama.cpp, tokenizer and chat
    template included. Quantize the result with `models quantize`."""
    from deeplocal.models.convert import convert_model
    from deeplocal.models.store import ModelStore

    store = ModelStore(models_dir(models_dir_))
    try:
        with byte_progress(f"converting {model} to {outtype.upper()}", None, enabled=not as_json) as progress:
            manifest = convert_model(store, model, out_type=outtype, model_id=model_id, pre=pre,
                                     replace=replace, progress=progress)
    except DeeplocalError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
    else:
        typer.echo(f"created {manifest.id}: {manifest.quantization} {human_size(manifest.size_bytes)}")
