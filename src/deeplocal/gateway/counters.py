"""Where rate-limit state lives. `SqlCounters` keeps it in the shared database, so every deeplocal
process (and replica) sharing that database enforces one limit together.

Each admission runs in a write transaction: SQLite takes the database write lock (BEGIN IMMEDIATE),
PostgreSQL locks the key's row (SELECT ... FOR UPDATE after an idempotent INSERT). `run_batch` runs
several admissions and settlements in one such transaction (the gateway's writer groups them). A Redis backend
fits the same `Counters` protocol: the state row becomes a hash, leases a sorted set scored by expiry,
and `admit` a Lua script (atomic on the Redis server) running the same arithmetic as limits.admit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, delete, func, select, update

from deeplocal.gateway.ledger import UsageRecord
from deeplocal.gateway.limits import (
    Bucket,
    RateLimited,
    RateState,
    Refusal,
    admit,
    current,
    fresh_state,
    headers_for,
    refund,
)
from deeplocal.gateway.principal import Limits
from deeplocal.store.prepared import Prepared, raw_write_transaction
from deeplocal.store.tables import rate_state, stream_leases, usage_ledger

_STATE_COLUMNS = ("quota_id", "req_level", "req_at", "tok_level", "tok_at", "period", "period_used")
_LEDGER_COLUMNS = ("ts", "request_id", "key_id", "tenant", "model", "upstream", "prompt_tokens",
                   "completion_tokens", "status")


@dataclass(frozen=True, slots=True)
class Grant:
    lease_id: str | None       # set when the key limits concurrent streams
    period: str                # the month the tokens were charged to
    headers: tuple[tuple[str, str], ...]


class Counters(Protocol):
    def admit(self, quota_id: str, limits: Limits, *, tokens: int, now: float) -> Grant:
        """Reserve one request and `tokens` tokens atomically, or raise RateLimited (nothing taken)."""
        ...

    def settle(self, quota_id: str, limits: Limits, *, grant: Grant | None, unused_tokens: int,
               usage: UsageRecord) -> None: ...


def _insert_ignore(engine: Engine) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    values = {name: bindparam(name) for name in _STATE_COLUMNS}
    return insert(rate_state).values(values).on_conflict_do_nothing(index_elements=["quota_id"])


class _Statements:
    def __init__(self, engine: Engine):
        c, lc = rate_state.c, stream_leases.c
        self.lock_state = Prepared(select(*(c[n] for n in _STATE_COLUMNS))
                                   .where(c.quota_id == bindparam("quota_id")).with_for_update(), engine)
        self.create_state = Prepared(_insert_ignore(engine), engine)
        self.write_state = Prepared(update(rate_state).where(c.quota_id == bindparam("q"))
                                    .values({n: bindparam(n) for n in _STATE_COLUMNS if n != "quota_id"}), engine)
        self.count_leases = Prepared(select(func.count()).select_from(stream_leases).where(
            lc.quota_id == bindparam("quota_id"), lc.expires_at > bindparam("now")), engine)
        self.add_lease = Prepared(stream_leases.insert().values(
            lease_id=bindparam("lease_id"), quota_id=bindparam("quota_id"), expires_at=bindparam("expires_at")),
            engine)
        self.drop_lease = Prepared(delete(stream_leases).where(lc.lease_id == bindparam("lease_id")), engine)
        self.drop_stale_leases = Prepared(delete(stream_leases).where(
            lc.quota_id == bindparam("quota_id"), lc.expires_at <= bindparam("now")), engine)
        self.add_usage = Prepared(usage_ledger.insert().values({n: bindparam(n) for n in _LEDGER_COLUMNS}), engine)


def _row(quota_id: str, state: RateState) -> dict[str, Any]:
    return {"quota_id": quota_id, "q": quota_id, "req_level": state.requests.level, "req_at": state.requests.at,
            "tok_level": state.tokens.level, "tok_at": state.tokens.at, "period": state.period,
            "period_used": state.period_used}


@dataclass(frozen=True, slots=True)
class AdmitOp:
    """Reserve one request and `tokens` tokens (see Counters.admit)."""

    quota_id: str
    limits: Limits
    tokens: int
    now: float


@dataclass(frozen=True, slots=True)
class SettleOp:
    """Refund what a grant did not use, release its lease, append the ledger row (see Counters.settle)."""

    quota_id: str
    limits: Limits
    grant: Grant | None
    unused_tokens: int
    usage: UsageRecord


class _Batch:
    """Operations inside one write transaction. A key's state row is read once, kept here while the
    operations change it, and written once at the end (the row stays locked all along)."""

    def __init__(self, cur: Any, sql: _Statements, lease_s: float):
        self._cur, self._sql, self._lease_s = cur, sql, lease_s
        self._states: dict[str, RateState] = {}
        self._dirty: set[str] = set()

    def _state(self, quota_id: str, limits: Limits, now: float) -> RateState:
        state = self._states.get(quota_id)
        if state is None:
            sql, cur = self._sql, self._cur
            row = sql.lock_state.run(cur, {"quota_id": quota_id}).fetchone()
            if row is None:
                sql.create_state.run(cur, _row(quota_id, fresh_state(limits, now)))
                row = sql.lock_state.run(cur, {"quota_id": quota_id}).fetchone()
            _, req_level, req_at, tok_level, tok_at, period, used = row
            state = self._states[quota_id] = RateState(Bucket(req_level, req_at), Bucket(tok_level, tok_at),
                                                       period, used)
        return state

    def _put(self, quota_id: str, state: RateState) -> None:
        self._states[quota_id] = state
        self._dirty.add(quota_id)

    def admit(self, op: AdmitOp) -> Grant | RateLimited:
        sql, cur, limits, now = self._sql, self._cur, op.limits, op.now
        state = self._state(op.quota_id, limits, now)
        in_flight = 0
        if limits.max_streams is not None:
            in_flight = sql.count_leases.run(cur, {"quota_id": op.quota_id, "now": now}).fetchone()[0]
        outcome = admit(state, limits, tokens=op.tokens, streams_in_flight=in_flight, now=now)
        if isinstance(outcome, Refusal):
            error = outcome.error
            error.headers.update(headers_for(current(state, limits, now), limits))
            if error.retry_after is not None:
                error.headers["Retry-After"] = str(int(error.retry_after))
            if limits.max_streams is not None:  # tidy leases of crashed processes while refusing
                sql.drop_stale_leases.run(cur, {"quota_id": op.quota_id, "now": now})
            return error
        self._put(op.quota_id, outcome)
        lease_id = None
        if limits.max_streams is not None:
            lease_id = os.urandom(16).hex()
            sql.add_lease.run(cur, {"lease_id": lease_id, "quota_id": op.quota_id, "expires_at": now + self._lease_s})
        return Grant(lease_id=lease_id, period=outcome.period, headers=tuple(headers_for(outcome, limits).items()))

    def settle(self, op: SettleOp) -> None:
        sql, cur, grant, usage, limits = self._sql, self._cur, op.grant, op.usage, op.limits
        if grant is not None and (limits.tpm is not None or limits.monthly_tokens is not None) \
                and op.unused_tokens != 0:
            state = self._state(op.quota_id, limits, usage.ts)
            self._put(op.quota_id, refund(state, limits, tokens=op.unused_tokens, period=grant.period))
        if grant is not None and grant.lease_id is not None:
            sql.drop_lease.run(cur, {"lease_id": grant.lease_id})
        sql.add_usage.run(cur, {
            "ts": usage.ts, "request_id": usage.request_id, "key_id": usage.key_id, "tenant": usage.tenant,
            "model": usage.model, "upstream": usage.upstream, "prompt_tokens": max(0, usage.prompt_tokens),
            "completion_tokens": max(0, usage.completion_tokens), "status": usage.status})

    def write_states(self) -> None:
        for quota_id in self._dirty:
            self._sql.write_state.run(self._cur, _row(quota_id, self._states[quota_id]))


class SqlCounters:
    def __init__(self, engine: Engine, *, lease_s: float):
        self._engine = engine
        self._lease_s = lease_s
        self._sql = _Statements(engine)

    def run_batch(self, ops: Sequence[AdmitOp | SettleOp]) -> list[Grant | RateLimited | None]:
        """Run admissions and settlements in order in one write transaction. A refused admission's
        result is its RateLimited error (the transaction still commits, with the stale-lease tidy-up)."""
        with raw_write_transaction(self._engine) as cur:
            return self.run_in(cur, ops)

    def run_in(self, cur: Any, ops: Sequence[AdmitOp | SettleOp]) -> list[Grant | RateLimited | None]:
        """`run_batch` inside a write transaction the caller holds on DBAPI cursor `cur`."""
        batch = _Batch(cur, self._sql, self._lease_s)
        results = [batch.admit(op) if isinstance(op, AdmitOp) else batch.settle(op) for op in ops]
        batch.write_states()
        return results

    def admit(self, quota_id: str, limits: Limits, *, tokens: int, now: float) -> Grant:
        """Reserve one request and `tokens` tokens atomically, or raise RateLimited (nothing taken)."""
        result = self.run_batch([AdmitOp(quota_id, limits, tokens, now)])[0]
        if isinstance(result, Exception):  # raised after commit so the tidy-up is kept
            raise result
        assert isinstance(result, Grant)
        return result

    def settle(self, quota_id: str, limits: Limits, *, grant: Grant | None, unused_tokens: int,
               usage: UsageRecord) -> None:
        """Refund unused tokens, release the stream lease and append the ledger row, in one transaction."""
        self.run_batch([SettleOp(quota_id, limits, grant, unused_tokens, usage)])
