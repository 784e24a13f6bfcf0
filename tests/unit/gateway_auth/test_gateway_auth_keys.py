"""Key format, hashing and the key store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from deeplocal.gateway.keys import (
    InvalidKeySpec,
    KeyNotFound,
    KeyStore,
    hash_secret,
    parse_expires,
    parse_key,
    secret_matches,
)
from deeplocal.gateway.principal import Limits
from deeplocal.store.db import make_engine
from deeplocal.store.migrations import migrate
from deeplocal.store.tables import api_keys


@pytest.fixture
def store(db_url, clock):
    engine = make_engine(db_url)
    migrate(engine)
    yield KeyStore(engine, clock=clock)
    engine.dispose()


def test_created_key_parses_and_matches_its_hash_only(store):
    created = store.create(tenant="acme", name="bot")
    parsed = parse_key(created.key)
    assert parsed is not None and parsed.key_id == created.record.key_id
    assert secret_matches(parsed.secret, created.record.salt, created.record.secret_hash)
    assert not secret_matches(parsed.secret[:-1] + ("A" if parsed.secret[-1] != "A" else "B"),
                              created.record.salt, created.record.secret_hash)
    assert created.key not in repr(created) and parsed.secret not in repr(parsed)


@pytest.mark.parametrize("text", [
    "", "dl-", "sk-abc", "dl-0123456789abcdef", "dl-0123456789ABCDEF-" + "a" * 43,
    "dl-0123456789abcdef-" + "a" * 42, "dl-0123456789abcdef-" + "a" * 44,
    "dl-0123456789abcdef-" + "a" * 42 + "!", " dl-0123456789abcdef-" + "a" * 43,
    "dl-0123456789abcdef-" + "a" * 42 + "\u00e9",
])
def test_malformed_keys_do_not_parse(text):
    assert parse_key(text) is None


def test_secret_is_never_stored(store, db_url):
    created = store.create(tenant="acme", name="bot")
    secret = parse_key(created.key).secret
    raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()
    wal = Path(db_url.removeprefix("sqlite:///") + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert secret.encode() not in raw
    assert created.record.secret_hash.encode() in raw
    assert hash_secret(secret, created.record.salt) == created.record.secret_hash


def test_two_keys_get_distinct_salts_and_ids(store):
    a, b = store.create(tenant="acme", name="a"), store.create(tenant="acme", name="a")
    assert a.record.key_id != b.record.key_id and a.record.salt != b.record.salt


@pytest.mark.parametrize("kwargs, param", [
    ({"tenant": ""}, "tenant"), ({"tenant": "a\nb"}, "tenant"), ({"name": "x" * 200}, "name"),
    ({"scopes": ["root"]}, "scopes"), ({"scopes": []}, "scopes"),
    ({"limits": Limits(rpm=0)}, "rpm"), ({"limits": Limits(monthly_tokens=-5)}, "monthly_tokens"),
    ({"data_class": "secret"}, "data_class"), ({"models": ["ok", "bad\x00model"]}, "models"),
])
def test_invalid_specs_are_refused(store, kwargs, param):
    spec = {"tenant": "acme", "name": "bot", **kwargs}
    with pytest.raises(InvalidKeySpec) as info:
        store.create(**spec)
    assert info.value.param == param and info.value.status_code == 400


def test_list_revoke_and_tenant_confinement(store, clock):
    a = store.create(tenant="acme", name="a")
    b = store.create(tenant="globex", name="b")
    assert {r.key_id for r in store.list()} == {a.record.key_id, b.record.key_id}
    assert [r.key_id for r in store.list(tenant="acme")] == [a.record.key_id]
    with pytest.raises(KeyNotFound):  # another tenant's key looks like no key at all
        store.revoke(b.record.key_id, tenant="acme")
    assert store.get(b.record.key_id).revoked_at is None
    revoked = store.revoke(a.record.key_id, tenant="acme")
    assert revoked.state(clock()) == "revoked"
    assert [r.key_id for r in store.list()] == [b.record.key_id]
    assert {r.key_id for r in store.list(include_inactive=True)} == {a.record.key_id, b.record.key_id}
    with pytest.raises(KeyNotFound):
        store.revoke("0000000000000000")


def test_rotate_keeps_grants_and_counters_and_retires_the_old_key(store, clock):
    old = store.create(tenant="acme", name="bot", scopes=["inference", "admin"], models=["m1"],
                       limits=Limits(rpm=7, monthly_tokens=100), data_class="internal")
    new = store.rotate(old.record.key_id, grace_s=60)
    assert new.record.quota_id == old.record.quota_id == old.record.key_id
    assert new.record.rotated_from == old.record.key_id
    assert (new.record.scopes, new.record.models, new.record.limits, new.record.data_class) == (
        old.record.scopes, old.record.models, old.record.limits, old.record.data_class)
    assert store.get(old.record.key_id).state(clock()) == "active"   # grace period
    clock.advance(61)
    assert store.get(old.record.key_id).state(clock()) == "revoked"
    with pytest.raises(InvalidKeySpec):
        store.rotate(old.record.key_id)


def test_expiry_state(store, clock):
    created = store.create(tenant="acme", name="bot", expires_at=clock() + 10)
    assert store.get(created.record.key_id).state(clock()) == "active"
    clock.advance(10)
    assert store.get(created.record.key_id).state(clock()) == "expired"


@pytest.mark.parametrize("text, seconds", [("30d", 30 * 86400), ("12h", 43200), ("1h30m", 5400), ("2w", 1209600)])
def test_parse_expires_durations(text, seconds):
    assert parse_expires(text, 1000.0) == 1000.0 + seconds


def test_parse_expires_dates_and_errors():
    assert parse_expires("2030-01-01", 0.0) == 1893456000.0
    assert parse_expires("2030-01-01T01:00:00+01:00", 0.0) == 1893456000.0
    for bad in ("soon", "10x", "2000-01-01", "-5d"):
        with pytest.raises(InvalidKeySpec):
            parse_expires(bad, 1_800_000_000.0)


def test_rows_hold_json_grants(store, db_url):
    created = store.create(tenant="acme", name="bot", scopes=["admin", "inference"], models=["a", "b*"])
    with store._engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == created.record.key_id)).one()
    assert row.scopes == ["admin", "inference"] and row.models == ["a", "b*"]
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
