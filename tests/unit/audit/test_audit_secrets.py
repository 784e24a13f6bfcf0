"""Keys come from env or file, are validated, and never show in reprs, errors or log output."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from conftest import KEY, make_record

from deeplocal.gateway.audit import AuditKeyError, AuditLog, generate_key, load_key
from deeplocal.gateway.audit.crypto import AuditKeys


def test_key_from_env_wins_over_file(tmp_path: Path) -> None:
    file_key = tmp_path / "k"
    file_key.write_bytes(bytes(32))
    assert load_key(file_key, env={"DEEPLOCAL_AUDIT_KEY": base64.b64encode(KEY).decode()}) == KEY
    assert load_key(file_key, env={}) == bytes(32)                     # raw 32 bytes
    file_key.write_text(base64.b64encode(KEY).decode() + "\n")
    assert load_key(file_key, env={}) == KEY                           # base64 text
    assert load_key(None, env={}) is None
    assert len(base64.b64decode(generate_key())) == 32


@pytest.mark.parametrize("value", ["not base64!!", base64.b64encode(b"short").decode()])
def test_bad_keys_are_rejected_without_echoing_them(value: str) -> None:
    with pytest.raises(AuditKeyError) as info:
        load_key(None, env={"DEEPLOCAL_AUDIT_KEY": value})
    assert value not in str(info.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError):
        load_key(tmp_path / "nope", env={})


def test_bodies_need_a_key(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError):
        AuditLog(tmp_path, store_bodies=True)


def test_bodies_off_means_no_body_on_disk(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a", key=KEY, store_bodies=False) as log:
        log.append(make_record(1, prompt="my secret prompt"))
    raw = (tmp_path / "a" / "audit-000001.jsonl").read_text()
    assert "secret" not in raw and '"body":null' in raw


def test_nothing_secret_in_reprs_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    record = make_record(1, prompt="my secret prompt")
    with AuditLog(tmp_path / "a", key=KEY, store_bodies=True) as log:
        log.append(record)
        log.verify()
        log.erase_subject("alice")
        texts = [repr(record), repr(log), repr(log.keys), repr(AuditKeys.from_master(KEY)), caplog.text]
    secrets = ["my secret prompt", KEY.hex(), base64.b64encode(KEY).decode(), repr(KEY)]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    raw = b"".join(p.read_bytes() for p in (tmp_path / "a").iterdir() if p.is_file())
    assert KEY not in raw and base64.b64encode(KEY) not in raw
