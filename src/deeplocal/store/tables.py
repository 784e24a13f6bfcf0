"""Table definitions (SQLAlchemy Core). Times are Unix seconds (float) from the caller's clock.

Changing a table means adding a migration in migrations.py, never editing a shipped one.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Double, Index, Integer, MetaData, String, Table

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", Double, nullable=False),
)

# One row per API key. The secret is never stored: only a salted SHA-256 of it.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("quota_id", String(32), nullable=False, index=True),  # shared by a key and its rotations
    Column("tenant", String(128), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("salt", String(32), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("models", JSON, nullable=False),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("monthly_tokens", BigInteger),
    Column("max_streams", Integer),
    Column("data_class", String(16)),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),
    Column("revoked_at", Double),
    Column("rotated_from", String(32)),
    Column("pii_policy", String(1024)),   # schema v2: the key's own PII policy
)

# Rate-limit state per quota_id: two token buckets (requests, tokens) and the period's usage.
rate_state = Table(
    "rate_state",
    metadata,
    Column("quota_id", String(32), primary_key=True),
    Column("req_level", Double, nullable=False),
    Column("req_at", Double, nullable=False),
    Column("tok_level", Double, nullable=False),
    Column("tok_at", Double, nullable=False),
    Column("period", String(16), nullable=False),
    Column("period_used", BigInteger, nullable=False),
)

# One row per stream in flight; a crashed process's rows expire on their own.
stream_leases = Table(
    "stream_leases",
    metadata,
    Column("lease_id", String(32), primary_key=True),
    Column("quota_id", String(32), nullable=False, index=True),
    Column("expires_at", Double, nullable=False),
)

# The usage ledger: one row per settled request (also read by `deeplocal cost --live`).
usage_ledger = Table(
    "usage_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Double, nullable=False),
    Column("request_id", String(64)),
    Column("key_id", String(32), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("upstream", String(256), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Index("ix_usage_ledger_ts", "ts"),
    Index("ix_usage_ledger_tenant_ts", "tenant", "ts"),
    Index("ix_usage_ledger_key_ts", "key_id", "ts"),
)
