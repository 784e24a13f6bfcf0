"""Starts the scripted OpenAI-compatible server (a real uvicorn subprocess on 127.0.0.1, port 0)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVER = Path(__file__).with_name("bench_scripted_server.py")


@pytest.fixture(scope="module")
def scripted_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--ttft", "0.2", "--itl", "0.02"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
