"""Live mode: month-to-date usage per upstream/model, priced both ways.

The pure part takes rows of usage and prices. The ledger is read through `deeplocal.gateway.ledger`
(table `usage_ledger`: ts, model, upstream, prompt_tokens, completion_tokens, ...) when it is importable
and the database exists; otherwise `LedgerUnavailable` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from deeplocal.cost.prices import Price, PriceTable

DEFAULT_LOCAL_UPSTREAMS = ("local", "llamacpp", "vllm", "engine")


class LedgerUnavailable(RuntimeError):
    """There is no usage ledger to read; the message says why."""


@dataclass(frozen=True, slots=True)
class UsageRow:
    upstream: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class LiveLine:
    upstream: str
    model: str
    remote: bool
    requests: int
    prompt_tokens: int
    completion_tokens: int
    spent: float                  # what the remote upstream billed, at its list price (0 for local)
    price_name: str | None        # the price used for `spent`
    as_cloud: float               # the same tokens at the reference cloud price
    as_local: float | None        # the same tokens at the local cost per million


@dataclass(frozen=True, slots=True)
class LiveReport:
    since: datetime
    lines: tuple[LiveLine, ...]

    @property
    def spent(self) -> float:
        return sum(line.spent for line in self.lines)

    @property
    def as_cloud(self) -> float:
        return sum(line.as_cloud for line in self.lines)

    @property
    def as_local(self) -> float | None:
        values = [line.as_local for line in self.lines]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def price_live(
    rows: list[UsageRow],
    *,
    since: datetime,
    table: PriceTable,
    reference: Price,
    local_per_million: float | None,
    local_upstreams: tuple[str, ...] = DEFAULT_LOCAL_UPSTREAMS,
    upstream_prices: dict[str, str] | None = None,
    cache_hit_ratio: float = 0.0,
) -> LiveReport:
    """Price each row: remote rows at their upstream's (or model's) list price, and every row at the
    reference cloud price and at the local cost per million tokens. Pure."""
    mapping = upstream_prices or {}
    lines = []
    for row in rows:
        remote = row.upstream not in local_upstreams
        price: Price | None = None
        if remote:
            name = mapping.get(row.upstream, row.model)
            price = table.find(name, since.date()) or table.find(name) or reference
        tokens = row.prompt_tokens + row.completion_tokens
        lines.append(LiveLine(
            upstream=row.upstream, model=row.model, remote=remote, requests=row.requests,
            prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
            spent=price.cost(row.prompt_tokens, row.completion_tokens, cache_hit_ratio) if price else 0.0,
            price_name=price.name if price else None,
            as_cloud=reference.cost(row.prompt_tokens, row.completion_tokens, cache_hit_ratio),
            as_local=None if local_per_million is None else tokens * local_per_million / 1e6,
        ))
    return LiveReport(since=since, lines=tuple(lines))


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def read_ledger(database_url: str, since: datetime) -> list[UsageRow]:
    """Usage per (upstream, model) since `since`, from the gateway's usage ledger."""
    try:
        from sqlalchemy import inspect
        from sqlalchemy.engine import make_url

        from deeplocal.gateway.ledger import Ledger
        from deeplocal.store.db import make_engine
    except ImportError as exc:
        raise LedgerUnavailable(f"no usage ledger: the store/gateway modules are not available ({exc})") from exc
    url = make_url(database_url)
    database = url.database or ""
    is_file_db = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file_db and not Path(database).expanduser().is_file():
        raise LedgerUnavailable(f"no usage ledger: {database} does not exist "
                                "(run `deeplocal serve` with the gateway to record usage)")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("usage_ledger"):
                raise LedgerUnavailable("no usage ledger: the database has no usage_ledger table")
        merged: dict[tuple[str, str], list[int]] = {}
        for t in Ledger(engine).totals(since=since.timestamp()):
            acc = merged.setdefault((t.upstream, t.model), [0, 0, 0])
            acc[0] += t.requests
            acc[1] += t.prompt_tokens
            acc[2] += t.completion_tokens
    finally:
        engine.dispose()
    return [UsageRow(upstream=u, model=m, requests=a[0], prompt_tokens=a[1], completion_tokens=a[2])
            for (u, m), a in sorted(merged.items())]
