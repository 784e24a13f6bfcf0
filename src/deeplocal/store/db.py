"""Engine factory: SQLite under the data dir by default, PostgreSQL (or any SQLAlchemy URL) when given.

SQLite is opened in WAL mode with a busy timeout, and pysqlite's own transaction handling is
replaced by explicit BEGINs so that `write_transaction` can take the write lock up front
(`BEGIN IMMEDIATE`). That is what makes read-modify-write counters atomic across processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

DB_FILE_NAME = "deeplocal.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "deeplocal_sqlite_begin"


class DatabaseError(RuntimeError):
    """The database URL is unusable or the schema cannot be brought up to date."""


def default_database_url(data_dir: str | Path) -> str:
    path = Path(data_dir).expanduser() / DB_FILE_NAME
    return f"sqlite:///{path}"


def resolve_database_url(url: str | None, data_dir: str | Path) -> str:
    """The explicit URL (DEEPLOCAL_DATABASE_URL) if set, else the SQLite file under the data dir."""
    return url if url else default_database_url(data_dir)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not _is_memory(engine):
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; no fsync per commit
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _is_memory(engine: Engine) -> bool:
    database = engine.url.database
    return not database or database == ":memory:" or database.startswith("file::memory:")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an Engine for `url`; for a SQLite file, create its folder (mode 0700) first."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL inside: do not echo it
        raise DatabaseError("the database URL is not a valid SQLAlchemy URL") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(
            parsed, echo=echo, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement (SQLite: BEGIN IMMEDIATE).

    On PostgreSQL this is an ordinary transaction; callers lock rows with SELECT ... FOR UPDATE.
    """
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn
