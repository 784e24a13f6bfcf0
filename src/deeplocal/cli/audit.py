"""`deeplocal audit`: verify the chain, export, prune (retention), erase a data subject's bodies.

Exit codes: 0 ok; 1 verification failed; 2 bad usage, missing or wrong key, unreadable log.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(help="Check and maintain the tamper-evident audit log.", no_args_is_help=True)

DirOpt = Annotated[Path | None, typer.Option("--dir", help="Audit directory [default: <data_dir>/audit].")]
KeyOpt = Annotated[Path | None, typer.Option(
    "--key-file", help="Audit key file (base64 or 32 raw bytes); $DEEPLOCAL_AUDIT_KEY wins if set.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
EXIT_FAILED = 1
EXIT_ERROR = 2


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def _open(directory: Path | None, key_file: Path | None, as_json: bool) -> Any:
    from deeplocal.config import ConfigError, load_settings
    from deeplocal.gateway.audit import AuditKeyError, AuditLog, load_key

    try:
        settings = load_settings()
    except ConfigError as exc:
        _fail(str(exc), as_json)
    # The same folder and key the server uses (AuditLog.from_settings), unless the flags say otherwise.
    directory = directory or settings.audit.dir or settings.data_dir / "audit"
    try:
        return AuditLog(directory, key=load_key(key_file or settings.audit.key_file))
    except AuditKeyError as exc:
        _fail(exc.message, as_json)


def parse_since(value: str, *, now: float | None = None) -> float:
    """'7d', '12h', '30m', an ISO date or datetime (UTC when no zone), or epoch seconds."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([dhm])", value.strip())
    if m:
        return now - float(m.group(1)) * {"d": 86400, "h": 3600, "m": 60}[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use 7d, 12h, 30m, an ISO date such as 2026-11-01, or epoch seconds") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@app.command()
def verify(
    directory: DirOpt = None,
    key_file: KeyOpt = None,
    expect_head: Annotated[str | None, typer.Option(
        help="A head hash recorded earlier: fail if it is no longer in the log (records cut from the end).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the hash chain: any edited, deleted or reordered record, or a forged truncation, fails."""
    from deeplocal.gateway.audit import AuditKeyError

    log = _open(directory, key_file, as_json)
    if not log.dir.is_dir():
        _fail(f"no audit log at {log.dir}", as_json)
    try:
        result = log.verify(expect_head=expect_head)
    except (AuditKeyError, OSError) as exc:
        _fail(str(exc), as_json)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        state = "OK" if result.ok else "FAILED"
        typer.echo(f"{state}: {result.records} records (seq {result.first_seq}..{result.last_seq}), "
                   f"chain {result.chain}, head {result.head}")
        if result.truncated_through is not None:
            typer.echo(f"retention: records up to seq {result.truncated_through} removed (signed marker)")
        if result.erased_bodies:
            typer.echo(f"erased bodies: {result.erased_bodies}")
        for err in result.errors:
            typer.echo(f"  {err}", err=True)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def export(
    since: Annotated[str | None, typer.Option(help="Only records since: 7d, 12h, 2026-11-01, epoch.")] = None,
    bodies: Annotated[bool, typer.Option("--bodies", help="Decrypt and include stored bodies (needs the key).")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    directory: DirOpt = None,
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export records as JSON Lines (or one JSON array with --json)."""
    from deeplocal.gateway.audit import AuditKeyError

    log = _open(directory, key_file, as_json)
    try:
        rows = log.export(parse_since(since) if since else None, bodies=bodies)
    except AuditKeyError as exc:
        _fail(exc.message, as_json)
    text = json.dumps(rows, ensure_ascii=False) + "\n" if as_json else \
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(rows)} records to {out}", err=True)


@app.command()
def prune(
    days: Annotated[float, typer.Option("--days", min=0.0, help="Remove records older than this many days.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    directory: DirOpt = None,
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply retention: drop old records and leave a signed truncation marker (needs the key)."""
    from deeplocal.gateway.audit import AuditKeyError

    log = _open(directory, key_file, as_json)
    if not yes and not as_json:
        typer.confirm(f"Remove audit records older than {days:g} days from {log.dir}?", abort=True)
    try:
        result = log.apply_retention(days)
    except AuditKeyError as exc:
        _fail(exc.message, as_json)
    if as_json:
        typer.echo(json.dumps({"ok": True, "removed": result.removed, "through_seq": result.through_seq,
                               "segments_deleted": result.segments_deleted}))
    else:
        typer.echo(f"removed {result.removed} records"
                   + (f" (through seq {result.through_seq})" if result.through_seq else ""))


@app.command()
def erase(
    subject: Annotated[str, typer.Argument(help="The data subject id (the request's `user`, else the key id).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    directory: DirOpt = None,
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase the stored prompt and completion bodies of one data subject (GDPR Art. 17)."""
    log = _open(directory, key_file, as_json)
    if not yes and not as_json:
        typer.confirm(f"Erase every stored body of subject {subject!r}?", abort=True)
    erased = log.erase_subject(subject)
    if as_json:
        typer.echo(json.dumps({"ok": True, "erased_bodies": erased}))
    else:
        typer.echo(f"erased {erased} bodies; the chain still verifies")


@app.command()
def keygen() -> None:
    """Print a new random audit key (base64) for DEEPLOCAL_AUDIT_KEY or a key file."""
    from deeplocal.gateway.audit import generate_key

    typer.echo(generate_key())
