from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.service import Gateway


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):  # 2027-01-15, mid-month
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'deeplocal.db'}"


@pytest.fixture
def gateway(db_url: str, clock: FakeClock) -> Iterator[Gateway]:
    gw = Gateway(GatewaySettings(auth=True), db_url, clock=clock)
    yield gw
    gw.close()
