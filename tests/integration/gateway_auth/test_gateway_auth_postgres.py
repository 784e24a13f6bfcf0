"""The same guarantees on PostgreSQL: a throwaway cluster (unix socket only) started for this module.

Skipped where PostgreSQL's server binaries or the psycopg driver are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from gateway_auth_worker import run_workers

from deeplocal.gateway.auth import AuthenticationError
from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.limits import QuotaExceeded
from deeplocal.gateway.principal import Limits
from deeplocal.gateway.service import Gateway

pytest.importorskip("psycopg")
BIN = next((Path(p) for p in ("/usr/local/bin", "/usr/lib/postgresql/15/bin") if (Path(p) / "initdb").exists()), None)
pytestmark = pytest.mark.skipif(BIN is None, reason="PostgreSQL server binaries not installed")


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *args] if owner else args


@pytest.fixture(scope="module")
def pg_url():
    owner = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
    if owner and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser")
    root = Path(tempfile.mkdtemp(prefix="dl-pg-"))
    if owner:
        shutil.chown(root, owner)
    port = str(40000 + os.getpid() % 20000)
    data = root / "data"
    subprocess.run(_as_owner([str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], owner),
                   check=True, capture_output=True)
    subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                              f"-k {root} -c listen_addresses='' -p {port} -F", "start"], owner),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
                       capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def gateway(pg_url):
    gw = Gateway(GatewaySettings(auth=True), pg_url)
    yield gw
    gw.close()


async def test_keys_and_limits_on_postgres(gateway):
    created = gateway.keys.create(tenant="acme", name="pg", models=["m"], limits=Limits(monthly_tokens=30))
    principal = await gateway.authenticate(f"Bearer {created.key}")
    gateway.keys.revoke(gateway.keys.create(tenant="acme", name="gone").record.key_id)
    reservation = await gateway.reserve(principal, model="m", prompt_tokens=5, max_tokens=20)
    with pytest.raises(QuotaExceeded):
        await gateway.reserve(principal, model="m", prompt_tokens=5, max_tokens=20)
    await gateway.settle(reservation, prompt_tokens=5, completion_tokens=2, upstream="local", status="cancelled")
    await gateway.reserve(principal, model="m", prompt_tokens=5, max_tokens=15)
    with pytest.raises(AuthenticationError):
        await gateway.authenticate(f"Bearer {created.key[:-1]}{'x' if created.key[-1] != 'x' else 'y'}")


def test_two_processes_together_spend_exactly_the_quota_on_postgres(gateway, pg_url, tmp_path):
    key = gateway.keys.create(tenant="acme", name="bot", limits=Limits(monthly_tokens=600, max_streams=50)).key
    results = run_workers(pg_url, key, processes=2, attempts=50, tokens=10, settle=True, tmp_path=tmp_path)
    assert sum(r["granted"] for r in results) == 60
    assert all(r["granted"] > 0 for r in results), results
