"""Fixtures for routing tests: scripted OpenAI-compatible servers in their own processes on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).parent


class FakeUpstreamProcess:
    """Handle on one fake_upstream.py process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fake_upstream.py")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"fake upstream did not start: {line!r}")
        self.port = int(line.split()[1])
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root + "/v1"
        self._http = httpx.Client(base_url=self.root, timeout=10, trust_env=False)
        for _ in range(100):  # the socket is bound before uvicorn serves: wait until it answers
            try:
                self._http.get("/_control/log")
                break
            except httpx.TransportError:
                time.sleep(0.05)

    def script(self, *steps: dict[str, Any], default: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"steps": list(steps)}
        if default is not None:
            payload["default"] = default
        self._http.post("/_control/script", json=payload).raise_for_status()

    def reset(self) -> None:
        self._http.post("/_control/reset").raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return self._http.get("/_control/log").json()["requests"]

    def set_models_status(self, status: int) -> None:
        self._http.post("/_control/models", json={"status": status}).raise_for_status()

    def close(self) -> None:
        self._http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def _cloud_process() -> Iterator[FakeUpstreamProcess]:
    server = FakeUpstreamProcess()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _replica_process() -> Iterator[FakeUpstreamProcess]:
    server = FakeUpstreamProcess()
    yield server
    server.close()


@pytest.fixture
def cloud(_cloud_process: FakeUpstreamProcess) -> FakeUpstreamProcess:
    """A fake cloud API (fresh script and empty request log for each test)."""
    _cloud_process.reset()
    return _cloud_process


@pytest.fixture
def replica(_replica_process: FakeUpstreamProcess) -> FakeUpstreamProcess:
    """A fake second local replica reached by URL."""
    _replica_process.reset()
    return _replica_process
