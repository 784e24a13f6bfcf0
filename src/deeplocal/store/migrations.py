"""Versioned schema migrations: each step runs once, in order, inside one locked transaction.

Concurrent starters are safe: SQLite serialises them with BEGIN IMMEDIATE, PostgreSQL with a
transaction-scoped advisory lock. A database newer than this code is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, inspect, select, text

from deeplocal.store import tables
from deeplocal.store.db import DatabaseError, write_transaction

_PG_LOCK_ID = 0x64656570  # "deep"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_keys_limits_ledger(conn: Connection) -> None:
    tables.metadata.create_all(
        conn,
        tables=[tables.api_keys, tables.rate_state, tables.stream_leases, tables.usage_ledger],
    )


def _v2_key_pii_policy(conn: Connection) -> None:
    """A key's own PII policy. A database created at v2 already has the column (v1 creates the tables
    as they are now)."""
    if "pii_policy" not in {c["name"] for c in inspect(conn).get_columns(tables.api_keys.name)}:
        conn.execute(text(f"ALTER TABLE {tables.api_keys.name} ADD COLUMN pii_policy VARCHAR(1024)"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "api keys, rate-limit state, stream leases, usage ledger", _v1_keys_limits_ledger),
    Migration(2, "a PII policy per key", _v2_key_pii_policy),
)


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(tables.schema_version.name):
        return 0
    return conn.execute(select(func.coalesce(func.max(tables.schema_version.c.version), 0))).scalar_one()


def migrate(engine: Engine, *, migrations: tuple[Migration, ...] = MIGRATIONS,
            clock: Callable[[], float] = time.time) -> int:
    """Bring the schema up to the newest version; return that version."""
    latest = migrations[-1].version if migrations else 0
    with write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        tables.metadata.create_all(conn, tables=[tables.schema_version])
        version = current_version(conn)
        if version > latest:
            raise DatabaseError(
                f"the database schema is version {version}, newer than this deeplocal ({latest}): upgrade deeplocal"
            )
        for step in migrations:
            if step.version > version:
                step.apply(conn)
                conn.execute(tables.schema_version.insert().values(
                    version=step.version, description=step.description, applied_at=clock()))
    return latest
