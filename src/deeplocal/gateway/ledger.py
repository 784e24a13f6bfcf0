"""The usage ledger: one row per settled request, in the shared database.

Columns (table `usage_ledger`): id, ts (Unix seconds, float, when settled), request_id, key_id (public
id), tenant, model, upstream, prompt_tokens, completion_tokens, status (free text from the caller: the
API writes the HTTP status, "200", "499" for a client that hung up, ...). Read by `deeplocal cost --live`
and the admin usage endpoints through `Ledger.records` / `Ledger.totals`. Rows are written by
`counters.SqlCounters` when a request is settled, in the same transaction that settles its counters;
the gateway's writer may hold a settlement back for a few milliseconds, so a `Ledger` made by the
gateway first commits what is pending (`before_read`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select

from deeplocal.store.tables import usage_ledger


@dataclass(frozen=True, slots=True)
class UsageRecord:
    ts: float
    key_id: str
    tenant: str
    model: str
    upstream: str
    prompt_tokens: int
    completion_tokens: int
    status: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    tenant: str
    model: str
    upstream: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


def append(conn: Connection, record: UsageRecord) -> None:
    """Insert one row inside the caller's transaction (for imports, tools and tests; the request path
    writes through SqlCounters.settle)."""
    conn.execute(usage_ledger.insert().values(
        ts=record.ts, request_id=record.request_id, key_id=record.key_id, tenant=record.tenant,
        model=record.model, upstream=record.upstream, prompt_tokens=max(0, record.prompt_tokens),
        completion_tokens=max(0, record.completion_tokens), status=record.status,
    ))


class Ledger:
    def __init__(self, engine: Engine, *, before_read: Callable[[], object] | None = None):
        self._engine = engine
        self._before_read = before_read

    def records(self, *, since: float | None = None, until: float | None = None, tenant: str | None = None,
                key_id: str | None = None, limit: int = 1000) -> list[UsageRecord]:
        if self._before_read is not None:
            self._before_read()
        query = select(usage_ledger).order_by(usage_ledger.c.ts.desc()).limit(limit)
        query = _filtered(query, since=since, until=until, tenant=tenant, key_id=key_id)
        with self._engine.connect() as conn:
            return [UsageRecord(ts=r.ts, key_id=r.key_id, tenant=r.tenant, model=r.model, upstream=r.upstream,
                                prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
                                status=r.status, request_id=r.request_id) for r in conn.execute(query)]

    def totals(self, *, since: float | None = None, until: float | None = None,
               tenant: str | None = None) -> list[UsageTotals]:
        if self._before_read is not None:
            self._before_read()
        c = usage_ledger.c
        query = (select(c.tenant, c.model, c.upstream, func.count(), func.sum(c.prompt_tokens),
                        func.sum(c.completion_tokens))
                 .group_by(c.tenant, c.model, c.upstream).order_by(c.tenant, c.model, c.upstream))
        query = _filtered(query, since=since, until=until, tenant=tenant, key_id=None)
        with self._engine.connect() as conn:
            return [UsageTotals(tenant=t, model=m, upstream=u, requests=n, prompt_tokens=int(p or 0),
                                completion_tokens=int(k or 0)) for t, m, u, n, p, k in conn.execute(query)]


def _filtered(query, *, since, until, tenant, key_id):  # type: ignore[no-untyped-def]
    c = usage_ledger.c
    if since is not None:
        query = query.where(c.ts >= since)
    if until is not None:
        query = query.where(c.ts < until)
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    if key_id is not None:
        query = query.where(c.key_id == key_id)
    return query
