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
    from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                               TransferSpeedColumn)

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
    table = Table("id", "format", "arch", "params", "quant", "size", "source")
    for m in manifests:
        table.add_row(m.id, m.format, m.architecture, human_params(m.parameters), m.quantization,
                      human_size(m.size_bytes), m.source)
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
