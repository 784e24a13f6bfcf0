"""`deeplocal keys ...`: create, list, revoke and rotate API keys (stored as hashes; shown once)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from deeplocal.errors import DeeplocalError

app = typer.Typer(help="Manage API keys: create, list, revoke, rotate. Keys are shown once, stored hashed.",
                  no_args_is_help=True)

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="DEEPLOCAL_DATABASE_URL", show_envvar=True,
    help="SQLAlchemy URL of the shared database \\[default: sqlite file under the data dir]")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder \\[default: from settings, ~/.deeplocal]")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Tenant = Annotated[str | None, typer.Option("--tenant", help="Only act on keys of this tenant.")]


@contextmanager
def _key_store(database_url: str | None, data_dir: Path | None) -> Iterator:
    from deeplocal.gateway.keys import KeyStore
    from deeplocal.store.db import make_engine, resolve_database_url
    from deeplocal.store.migrations import migrate

    if data_dir is None or not database_url:   # the server's database unless the flags say otherwise
        from deeplocal.config import load_settings

        settings = load_settings()
        database_url = database_url or settings.database_url
        data_dir = data_dir or settings.data_dir
    engine = make_engine(resolve_database_url(database_url, data_dir))
    try:
        migrate(engine)
        yield KeyStore(engine, clock=time.time)
    finally:
        engine.dispose()


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_created(created, *, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    record = created.record.public_dict(time.time())
    if as_json:
        typer.echo(json.dumps({"key": created.key, **record}))
        return
    typer.echo(f"key id:  {record['key_id']}  (tenant {record['tenant']}, name {record['name']})")
    typer.echo(f"API key: {created.key}")
    typer.secho("Store it now: it is shown only this once and cannot be recovered.", fg=typer.colors.YELLOW)


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the key belongs to.")],
    name: Annotated[str, typer.Option("--name", help="A label for the key (who or what uses it).")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", help="Allowed models, comma separated or repeated; globs allowed \\[default: all]")] = None,
    scopes: Annotated[list[str] | None, typer.Option(
        "--scopes", help="inference and/or admin, comma separated \\[default: inference]")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", help="Requests per minute \\[default: no limit]")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="Tokens per minute \\[default: no limit]")] = None,
    monthly_tokens: Annotated[int | None, typer.Option(
        "--monthly-tokens", help="Tokens per calendar month, UTC \\[default: no limit]")] = None,
    max_streams: Annotated[int | None, typer.Option(
        "--max-streams", help="Requests in flight at once \\[default: no limit]")] = None,
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Lifetime like 30d / 12h, or an ISO date \\[default: never]")] = None,
    data_class: Annotated[str | None, typer.Option(
        "--data-class", help="Default data class for routing: restricted, internal or public")] = None,
    pii_policy: Annotated[str | None, typer.Option(
        "--pii-policy", help="The key's own PII policy over its tenant's, e.g. 'CN_ID=block,EMAIL_ADDRESS=redact' "
                             "('*=action' for the rest) \\[default: the tenant's]")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Create a key and print it once."""
    from deeplocal.gateway.keys import parse_expires
    from deeplocal.gateway.principal import Limits

    try:
        expires_at = parse_expires(expires, time.time()) if expires else None
        with _key_store(database_url, data_dir) as store:
            created = store.create(
                tenant=tenant, name=name, scopes=_split(scopes) or ["inference"], models=_split(models),
                limits=Limits(rpm=rpm, tpm=tpm, monthly_tokens=monthly_tokens, max_streams=max_streams),
                expires_at=expires_at, data_class=data_class, pii_policy=pii_policy)
    except DeeplocalError as exc:
        raise _fail(exc) from None
    _print_created(created, as_json=as_json)


@app.command("list")
def list_keys(
    tenant: Tenant = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked and expired keys.")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """List keys (ids and grants; never secrets)."""
    with _key_store(database_url, data_dir) as store:
        records = store.list(tenant=tenant, include_inactive=all_keys)
    now = time.time()
    rows = [r.public_dict(now) for r in records]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no keys" + (f" for tenant {tenant}" if tenant else "") + ".")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("key id", "tenant", "name", "scopes", "models", "rpm", "tpm", "month", "streams",
                  "class", "pii policy", "expires", "state")
    for row in rows:
        table.add_row(row["key_id"], row["tenant"], row["name"], ",".join(row["scopes"]),
                      ",".join(row["models"]) or "*", *(str(row[k] or "-") for k in
                                                         ("rpm", "tpm", "monthly_tokens", "max_streams",
                                                          "data_class", "pii_policy")),
                      _when(row["expires_at"]), row["state"])
    Console().print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the part after 'dl-'), as shown by `keys list`.")],
    tenant: Tenant = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Revoke a key. Servers stop accepting it within their key cache TTL (default 5 s)."""
    try:
        with _key_store(database_url, data_dir) as store:
            record = store.revoke(key_id, tenant=tenant)
    except DeeplocalError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(record.public_dict(time.time())))
    else:
        typer.echo(f"revoked {record.key_id} (tenant {record.tenant}, name {record.name}).")


@app.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(help="The key id to replace.")],
    grace: Annotated[str | None, typer.Option(
        "--grace", help="Keep the old key working this long, e.g. 10m \\[default: revoke now]")] = None,
    tenant: Tenant = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Issue a new key with the same grants and counters, and retire the old one."""
    from deeplocal.gateway.keys import parse_expires

    try:
        grace_s = parse_expires(grace, 0.0) if grace else 0.0
        with _key_store(database_url, data_dir) as store:
            created = store.rotate(key_id, tenant=tenant, grace_s=grace_s)
    except DeeplocalError as exc:
        raise _fail(exc) from None
    _print_created(created, as_json=as_json)
