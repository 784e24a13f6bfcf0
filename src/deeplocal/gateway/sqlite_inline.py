"""`InlineSqlite`: one dedicated SQLite connection on which the gateway runs a batch on the calling
(event loop) thread, for the case where a thread hop costs more than the transaction itself: a lone
request. It never waits: another writer holding the lock raises LockBusy at once (busy_timeout 0),
and the caller hands the batch to the writer thread instead. It never checkpoints the WAL either
(wal_autocheckpoint 0): `checkpoint()` does that from the writer thread, off the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

RunIn = Callable[[Any, Sequence[Any]], list[Any]]   # (DBAPI cursor in a transaction, ops) -> results


class LockBusy(Exception):
    """Another connection holds the SQLite write lock; nothing was done."""


def supports(engine: Engine) -> bool:
    """SQLite on a file (an in-memory database is private to each connection)."""
    database = engine.url.database
    return engine.dialect.name == "sqlite" and bool(database) and database != ":memory:" \
        and not database.startswith("file::memory:")


class InlineSqlite:
    def __init__(self, engine: Engine, run_in: RunIn):
        self._engine = engine
        self._run_in = run_in
        self._fairy: Any = None   # the pool's wrapper, held so the connection never goes back
        self._conn: sqlite3.Connection | None = None
        self._commits = 0
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._fairy = self._engine.raw_connection()
            conn = self._fairy.driver_connection
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._conn = conn
        return self._conn

    def run(self, ops: Sequence[Any]) -> list[Any]:
        """The ops in one transaction here and now, or LockBusy (rolled back: nothing happened)."""
        with self._lock:
            conn = self._connection()
            cur = conn.cursor()
            try:
                try:
                    cur.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) == sqlite3.SQLITE_BUSY:
                        raise LockBusy(str(exc)) from exc
                    raise
                try:
                    results = self._run_in(cur, ops)
                    cur.execute("COMMIT")
                except BaseException:
                    conn.rollback()
                    raise
            finally:
                cur.close()
            self._commits += 1
            return results

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database (PASSIVE: nobody waits), if this connection
        committed since the last time. Blocking: call it from the writer thread."""
        with self._lock:
            commits, self._commits = self._commits, 0
        if commits:
            pooled = self._engine.raw_connection()
            try:
                pooled.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                pooled.close()

    def close(self) -> None:
        with self._lock:
            if self._fairy is not None:   # its pragmas are not for others: close it, not back to the pool
                self._fairy.invalidate()
                self._fairy.close()
            self._fairy = self._conn = None
