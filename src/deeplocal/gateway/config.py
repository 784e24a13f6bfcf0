"""Settings of the access layer (auth, key cache, limits). Wired into `Settings.gateway` by the lead."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GatewaySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # API-key auth. Off is allowed only while the server binds a loopback address (transport.py).
    auth: bool = False
    # How long a verified key record is reused before the database is read again. This is the
    # revocation latency for revocations made by another process (the CLI, another replica).
    key_cache_ttl_s: float = Field(5.0, ge=0, le=300)
    # How long an unknown key id is remembered as unknown (stops random-key floods reaching the DB).
    negative_cache_ttl_s: float = Field(1.0, ge=0, le=60)
    key_cache_size: int = Field(10_000, ge=0)
    # A stream's concurrency lease expires after this, so a crashed process cannot hold slots forever.
    stream_lease_s: float = Field(900.0, gt=0)
    # Longest Authorization header accepted; longer ones are rejected without a database read.
    max_auth_header_bytes: int = Field(256, ge=64, le=8192)
    # Threads that run database work off the event loop (None: 1 for SQLite, 4 otherwise).
    db_threads: int | None = Field(None, ge=1, le=64)
    # A finished request's settlement (refund, lease release, ledger row) may wait this long to share
    # the next transaction. Other processes see the released slot and refund this much later.
    settle_flush_s: float = Field(0.02, ge=0, le=5)
