"""`Gateway`: the one object the API calls for identity, access and limits.

authenticate -> require_scope / require_model -> reserve -> (generate) -> settle. Database work runs off
the event loop: key lookups on a small thread pool (a cached key needs none), admissions and
settlements on one writer thread that commits whatever is queued in one transaction (writer.py). An
admission is awaited; a settlement may be left to ride along with the next transaction (`wait=False`),
which close() commits at the latest. The exception: on SQLite, the admission of a request that is
alone in flight runs right on the event loop (sqlite_inline.py: it never waits for a lock), because
for one request the thread hop costs more than the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine

from deeplocal.errors import DeeplocalError
from deeplocal.gateway.auth import (
    Authenticator,
    KeyCache,
    ModelNotAllowed,
    PermissionDenied,
    parse_authorization,
)
from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.counters import AdmitOp, Counters, Grant, SettleOp, SqlCounters
from deeplocal.gateway.keys import KeyStore
from deeplocal.gateway.ledger import Ledger, UsageRecord
from deeplocal.gateway.principal import Principal, anonymous_principal
from deeplocal.gateway.sqlite_inline import InlineSqlite
from deeplocal.gateway.sqlite_inline import supports as inline_supported
from deeplocal.gateway.writer import NOT_NOW, BatchWriter, WriterClosed
from deeplocal.store.db import is_sqlite, make_engine
from deeplocal.store.migrations import migrate

T = TypeVar("T")
log = logging.getLogger(__name__)


class InvalidUsage(DeeplocalError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    principal: Principal
    model: str
    prompt_tokens: int
    max_tokens: int
    created_at: float
    grant: Grant | None  # None: nothing was counted (auth off, or a key without limits)

    @property
    def reserved_tokens(self) -> int:
        return self.prompt_tokens + self.max_tokens


class Gateway:
    def __init__(self, settings: GatewaySettings, db: Engine | str, *, clock: Callable[[], float] = time.time,
                 counters: Counters | None = None):
        self.settings = settings
        self.enabled = settings.auth
        self._clock = clock
        self._owns_engine = isinstance(db, str)
        self.engine = make_engine(db) if isinstance(db, str) else db
        migrate(self.engine, clock=clock)
        self.keys = KeyStore(self.engine, clock=clock)
        cache = KeyCache(ttl_s=settings.key_cache_ttl_s, negative_ttl_s=settings.negative_cache_ttl_s,
                         size=settings.key_cache_size, clock=clock)
        self._auth = Authenticator(self.keys, cache, clock=clock)
        self._counters = counters or SqlCounters(self.engine, lease_s=settings.stream_lease_s)
        threads = settings.db_threads or (1 if is_sqlite(self.engine) else 4)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deeplocal-gateway-db")
        run_batch = getattr(self._counters, "run_batch", None)   # a Counters without it: one op a transaction
        run_in = getattr(self._counters, "run_in", None)
        self._inline = InlineSqlite(self.engine, run_in) if run_in is not None and inline_supported(self.engine) \
            else None
        self._writer: BatchWriter[AdmitOp | SettleOp] | None = (
            BatchWriter(run_batch, flush_s=settings.settle_flush_s, on_error=_log_lost,
                        housekeeping=self._inline.checkpoint if self._inline is not None else None)
            if run_batch is not None else None)
        self.ledger = Ledger(self.engine, before_read=self.flush)
        self._open: set[str] = set()

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # -- identity ---------------------------------------------------------------------------------
    async def authenticate(self, authorization: str | None) -> Principal:
        """Resolve `Authorization: Bearer <key>` to a Principal, or raise AuthenticationError (401)."""
        if not self.enabled:
            return anonymous_principal()
        parsed = parse_authorization(authorization, max_bytes=self.settings.max_auth_header_bytes)
        hit, record = self._auth.cache.get(parsed.key_id)
        if not hit:
            record = await self._run(self._auth.load, parsed.key_id)
        return self._auth.verify(parsed, record).principal()

    def forget_key(self, key_id: str) -> None:
        """Drop a key from this process's cache (call after revoking or rotating it here)."""
        self._auth.cache.forget(key_id)

    # -- access -----------------------------------------------------------------------------------
    def require_scope(self, principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            raise PermissionDenied(f"This API key lacks the '{scope}' scope.")

    def require_model(self, principal: Principal, model: str) -> None:
        if not principal.may_use(model):
            raise ModelNotAllowed(f"This API key may not use the model '{model[:128]}'.", param="model")

    def visible_models(self, principal: Principal, models: list[str]) -> list[str]:
        return [m for m in models if principal.may_use(m)]

    # -- limits -----------------------------------------------------------------------------------
    async def reserve(self, principal: Principal, *, model: str, prompt_tokens: int,
                      max_tokens: int) -> Reservation:
        """Admit one request and reserve prompt + max_tokens tokens, or raise RateLimited (429)."""
        if prompt_tokens < 0 or max_tokens < 0:
            raise InvalidUsage("prompt_tokens and max_tokens must not be negative")
        now = self._clock()
        grant = None
        if self.enabled and not principal.limits.unlimited:
            grant = await self._admit(principal, model=model, tokens=prompt_tokens + max_tokens, now=now)
        reservation = Reservation(reservation_id=os.urandom(16).hex(), principal=principal, model=model,
                                  prompt_tokens=prompt_tokens, max_tokens=max_tokens, created_at=now, grant=grant)
        self._open.add(reservation.reservation_id)
        return reservation

    async def _admit(self, principal: Principal, *, model: str, tokens: int, now: float) -> Grant:
        if self._writer is None:
            return await self._admit_on_pool(principal, model=model, tokens=tokens, now=now)
        op = AdmitOp(principal.quota_id, principal.limits, tokens, now)
        if self._inline is not None and not self._open:
            # A lone request: a transaction right here costs less than the hop to the writer thread.
            result = self._writer.run_here(op, self._inline.run)
            if result is not NOT_NOW:
                if isinstance(result, Exception):
                    raise result
                return result
        # If the caller leaves while the database admits it, what was granted is given back.
        return await self._writer.submit(op, on_orphan=lambda grant: self._give_back(principal, model, tokens,
                                                                                     grant))

    def _give_back(self, principal: Principal, model: str, tokens: int, grant: Grant) -> None:
        usage = UsageRecord(ts=self._clock(), key_id=principal.key_id, tenant=principal.tenant, model=model,
                            upstream="", prompt_tokens=0, completion_tokens=0, status="cancelled")
        self._write_later(SettleOp(principal.quota_id, principal.limits, grant, tokens, usage))

    async def _admit_on_pool(self, principal: Principal, *, model: str, tokens: int, now: float) -> Grant:
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._executor, lambda: self._counters.admit(
            principal.quota_id, principal.limits, tokens=tokens, now=now))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:  # the caller left while the database admitted it: give it back
            work.add_done_callback(lambda done: self._undo_admit(done, principal, model, tokens))
            raise

    def _undo_admit(self, done: asyncio.Future[Grant], principal: Principal, model: str, tokens: int) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        usage = UsageRecord(ts=self._clock(), key_id=principal.key_id, tenant=principal.tenant, model=model,
                            upstream="", prompt_tokens=0, completion_tokens=0, status="cancelled")
        self._executor.submit(self._counters.settle, principal.quota_id, principal.limits,
                              grant=done.result(), unused_tokens=tokens, usage=usage)

    def rate_limit_headers(self, reservation: Reservation) -> dict[str, str]:
        return dict(reservation.grant.headers) if reservation.grant else {}

    async def settle(self, reservation: Reservation, *, prompt_tokens: int, completion_tokens: int,
                     upstream: str, status: str, request_id: str | None = None, wait: bool = True) -> None:
        """Charge actual usage, release the stream slot and write the ledger row. Idempotent; safe to
        call from a cancelled stream's `finally` (the database work completes even if this await is
        cancelled). `wait=False` returns at once and lets the writer commit it with its next
        transaction (within `settle_flush_s`; close() and ledger reads commit it first)."""
        if reservation.reservation_id not in self._open:
            return
        self._open.discard(reservation.reservation_id)
        principal = reservation.principal
        used = max(0, prompt_tokens) + max(0, completion_tokens)
        usage = UsageRecord(ts=self._clock(), key_id=principal.key_id, tenant=principal.tenant,
                            model=reservation.model, upstream=upstream, prompt_tokens=prompt_tokens,
                            completion_tokens=completion_tokens, status=status, request_id=request_id)
        op = SettleOp(principal.quota_id, principal.limits, reservation.grant, reservation.reserved_tokens - used,
                      usage)
        if self._writer is None:
            work = asyncio.get_running_loop().run_in_executor(self._executor, lambda: self._counters.settle(
                op.quota_id, op.limits, grant=op.grant, unused_tokens=op.unused_tokens, usage=op.usage))
            await asyncio.shield(work)
        elif not wait:
            self._write_later(op)
        else:
            try:
                await asyncio.shield(self._writer.submit(op))
            except WriterClosed:
                self._write_now(op)

    def _write_later(self, op: SettleOp) -> None:
        assert self._writer is not None
        try:
            self._writer.defer(op)
        except WriterClosed:   # settling after close(): write it here rather than lose it
            self._write_now(op)

    def _write_now(self, op: SettleOp) -> None:
        self._counters.settle(op.quota_id, op.limits, grant=op.grant, unused_tokens=op.unused_tokens,
                              usage=op.usage)

    def flush(self) -> None:
        """Commit every admission and settlement accepted so far (blocks)."""
        if self._writer is not None:
            self._writer.flush()

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Commit what is pending, then stop the database threads."""
        if self._writer is not None:
            self._writer.close()
        if self._inline is not None:
            self._inline.close()
        self._executor.shutdown(wait=True)
        if self._owns_engine:
            self.engine.dispose()


def _log_lost(ops: Sequence[object], error: BaseException) -> None:
    for op in ops:
        if isinstance(op, SettleOp):
            log.error("could not settle a request of key %s (%s): %r", op.usage.key_id, op.usage.status, error)
