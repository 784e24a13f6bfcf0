"""Engine factory and versioned migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from deeplocal.store.db import DatabaseError, default_database_url, make_engine, resolve_database_url
from deeplocal.store.migrations import MIGRATIONS, Migration, migrate
from deeplocal.store.tables import schema_version


def test_default_url_lives_under_the_data_dir(tmp_path):
    assert resolve_database_url(None, tmp_path) == f"sqlite:///{tmp_path / 'deeplocal.db'}"
    assert resolve_database_url("postgresql+psycopg://h/db", tmp_path) == "postgresql+psycopg://h/db"
    assert default_database_url("~/x").endswith("/x/deeplocal.db") and "~" not in default_database_url("~/x")


def test_migrate_creates_tables_once_and_records_versions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'db.sqlite'}")
    assert migrate(engine) == MIGRATIONS[-1].version
    assert migrate(engine) == MIGRATIONS[-1].version
    names = set(inspect(engine).get_table_names())
    assert {"api_keys", "rate_state", "stream_leases", "usage_ledger", "schema_version"} <= names
    with engine.connect() as conn:
        assert [r.version for r in conn.execute(select(schema_version))] == [m.version for m in MIGRATIONS]
    assert (tmp_path / "sub").stat().st_mode & 0o777 == 0o700
    engine.dispose()


def test_a_new_step_applies_once_and_a_newer_database_is_refused(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    calls = []
    step = Migration(MIGRATIONS[-1].version + 1, "test step", lambda conn: calls.append(1))
    migrate(engine, migrations=MIGRATIONS + (step,))
    migrate(engine, migrations=MIGRATIONS + (step,))
    assert calls == [1]
    with pytest.raises(DatabaseError, match="newer than this deeplocal"):
        migrate(engine)
    engine.dispose()


def test_a_failing_step_rolls_back_entirely(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def broken(conn):
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(engine, migrations=MIGRATIONS + (Migration(MIGRATIONS[-1].version + 1, "broken", broken),))
    assert "half_done" not in inspect(engine).get_table_names()
    assert "api_keys" not in inspect(engine).get_table_names()  # v1 was in the same transaction
    engine.dispose()


def test_a_bad_url_does_not_echo_credentials():
    with pytest.raises(DatabaseError) as info:
        make_engine("not a url with password hunter2")
    assert "hunter2" not in str(info.value)


def test_a_v1_database_gains_the_key_pii_policy_column_and_keeps_its_keys(tmp_path):
    from sqlalchemy import text

    from deeplocal.gateway.keys import KeyStore

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    store = KeyStore(engine, clock=lambda: 1000.0)
    old = store.create(tenant="acme", name="before")
    with engine.begin() as conn:   # what a database made by the v1 schema looks like
        conn.execute(text("ALTER TABLE api_keys DROP COLUMN pii_policy"))
        conn.execute(text("DELETE FROM schema_version WHERE version > 1"))
    assert "pii_policy" not in {c["name"] for c in inspect(engine).get_columns("api_keys")}
    assert migrate(engine) == MIGRATIONS[-1].version
    assert store.get(old.record.key_id).pii_policy is None
    new = store.create(tenant="acme", name="after", pii_policy="EMAIL_ADDRESS=block")
    assert store.get(new.record.key_id).principal().pii_policy == "EMAIL_ADDRESS=block"
    engine.dispose()
