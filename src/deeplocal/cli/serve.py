"""`deeplocal serve`: the OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deeplocal.config import ConfigError, load_settings


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if not v:
                continue
        if v is not None:
            out[k] = v
    return out


def serve(
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="GGUF path, store id or catalog name; repeat to serve several. "
                              "ID=PATH sets the served id. Default: the bundled SmolLM2-135M.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000; 0 picks a free one).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="deeplocal.yaml to read.")] = None,
    n_ctx: Annotated[int | None, typer.Option(
        "--n-ctx", help="KV cells for all sequences together; each holds n_ctx / max_num_seqs tokens.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="CPU threads for llama.cpp.")] = None,
    max_num_seqs: Annotated[int | None, typer.Option(help="Sequences decoded together.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    tls_client_ca: Annotated[Path | None, typer.Option(
        help="CA bundle (PEM): clients must present a certificate it signed (mutual TLS).")] = None,
    auth: Annotated[bool | None, typer.Option("--auth/--no-auth",
                                              help="Require API keys (required off loopback).")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
) -> None:
    """Serve models over an OpenAI-compatible API (chat, completions, embeddings, models)."""
    overrides = _drop_none({
        "server": {"host": host, "port": port, "tls_cert": str(tls_cert) if tls_cert else None,
                   "tls_key": str(tls_key) if tls_key else None,
                   "tls_client_ca": str(tls_client_ca) if tls_client_ca else None},
        "gateway": {"auth": auth},
        "engine": {"n_ctx": n_ctx, "n_threads": threads, "max_num_seqs": max_num_seqs},
        "models": list(model) if model else None,
        "log_level": log_level,
    })
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    from deeplocal.server import run_server

    raise typer.Exit(run_server(settings))

