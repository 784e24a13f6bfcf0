"""`Gateway`: the one object the API calls for identity, access and limits.

authenticate -> require_scope / require_model -> reserve -> (generate) -> settle. Database work runs on
the gateway's own small thread pool so the event loop never waits on a lock; a cached key needs none.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
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
from deeplocal.gateway.counters import Counters, Grant, SqlCounters
from deeplocal.gateway.keys import KeyStore
from deeplocal.gateway.ledger import Ledger, UsageRecord
from deeplocal.gateway.principal import Principal, anonymous_principal
from deeplocal.store.db import is_sqlite, make_engine
from deeplocal.store.migrations import migrate

T = TypeVar("T")


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
        self.ledger = Ledger(self.engine)
        cache = KeyCache(ttl_s=settings.key_cache_ttl_s, negative_ttl_s=settings.negative_cache_ttl_s,
                         size=settings.key_cache_size, clock=clock)
        self._auth = Authenticator(self.keys, cache, clock=clock)
        self._counters = counters or SqlCounters(self.engine, lease_s=settings.stream_lease_s)
        threads = settings.db_threads or (1 if is_sqlite(self.engine) else 4)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deeplocal-gateway-db")
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
        reservation = Reservation(reservation_id=uuid.uuid4().hex, principal=principal, model=model,
                                  prompt_tokens=prompt_tokens, max_tokens=max_tokens, created_at=now, grant=grant)
        self._open.add(reservation.reservation_id)
        return reservation

    async def _admit(self, principal: Principal, *, model: str, tokens: int, now: float) -> Grant:
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
                     upstream: str, status: str, request_id: str | None = None) -> None:
        """Charge actual usage, release the stream slot and write the ledger row. Idempotent; safe to
        call from a cancelled stream's `finally` (the database work completes even if this await is
        cancelled)."""
        if reservation.reservation_id not in self._open:
            return
        self._open.discard(reservation.reservation_id)
        principal = reservation.principal
        used = max(0, prompt_tokens) + max(0, completion_tokens)
        usage = UsageRecord(ts=self._clock(), key_id=principal.key_id, tenant=principal.tenant,
                            model=reservation.model, upstream=upstream, prompt_tokens=prompt_tokens,
                            completion_tokens=completion_tokens, status=status, request_id=request_id)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._executor, lambda: self._counters.settle(
            principal.quota_id, principal.limits, grant=reservation.grant,
            unused_tokens=reservation.reserved_tokens - used, usage=usage))
        await asyncio.shield(work)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._owns_engine:
            self.engine.dispose()
