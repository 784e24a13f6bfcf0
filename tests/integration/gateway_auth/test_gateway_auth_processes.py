"""Limits hold across real processes sharing one database."""

from __future__ import annotations

import pytest
from gateway_auth_worker import run_workers

from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.principal import Limits
from deeplocal.gateway.service import Gateway


@pytest.fixture
def shared(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    gateway = Gateway(GatewaySettings(auth=True), url)
    yield url, gateway
    gateway.close()


def test_two_processes_together_spend_exactly_the_monthly_quota(shared, tmp_path):
    url, gateway = shared
    key = gateway.keys.create(tenant="acme", name="bot", limits=Limits(monthly_tokens=1000)).key
    results = run_workers(url, key, processes=2, attempts=80, tokens=10, settle=True, tmp_path=tmp_path)
    assert sum(r["granted"] for r in results) == 100
    assert all(r["granted"] > 0 for r in results), results  # both really competed
    totals = gateway.ledger.totals()
    assert [(t.requests, t.prompt_tokens + t.completion_tokens) for t in totals] == [(100, 1000)]


def test_two_processes_share_the_concurrent_stream_limit(shared, tmp_path):
    url, gateway = shared
    key = gateway.keys.create(tenant="acme", name="bot", limits=Limits(max_streams=3)).key
    results = run_workers(url, key, processes=2, attempts=5, tokens=2, settle=False, tmp_path=tmp_path)
    assert sum(r["granted"] for r in results) == 3


def test_two_processes_share_requests_per_minute(shared, tmp_path):
    url, gateway = shared
    key = gateway.keys.create(tenant="acme", name="bot", limits=Limits(rpm=30)).key
    results = run_workers(url, key, processes=2, attempts=40, tokens=2, settle=True, tmp_path=tmp_path)
    granted = sum(r["granted"] for r in results)
    elapsed = max(r["seconds"] for r in results)
    assert 30 <= granted <= 30 + int(elapsed * 30 / 60) + 1, (granted, elapsed)
