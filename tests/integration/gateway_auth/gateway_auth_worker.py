"""A separate deeplocal process for the cross-process limit tests (run with `python this.py ...`).

Waits for a start file, then makes `attempts` reservations with one Gateway on the shared database;
prints one JSON line: how many were granted and refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.limits import RateLimited
from deeplocal.gateway.service import Gateway


async def run(db_url: str, key: str, attempts: int, tokens: int, settle: bool, start_file: str) -> dict:
    gateway = Gateway(GatewaySettings(auth=True), db_url)
    try:
        principal = await gateway.authenticate(f"Bearer {key}")
        while not os.path.exists(start_file):
            await asyncio.sleep(0.005)
        granted = refused = 0
        t0 = time.monotonic()
        for _ in range(attempts):
            try:
                reservation = await gateway.reserve(principal, model="m", prompt_tokens=tokens // 2,
                                                    max_tokens=tokens - tokens // 2)
            except RateLimited:
                refused += 1
                continue
            granted += 1
            if settle:
                await gateway.settle(reservation, prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2,
                                     upstream="local", status="ok")
        return {"granted": granted, "refused": refused, "seconds": time.monotonic() - t0}
    finally:
        gateway.close()


def run_workers(db_url: str, key: str, *, processes: int, attempts: int, tokens: int, settle: bool,
                tmp_path: Path) -> list[dict]:
    """Start `processes` copies of this script, release them together, collect their results."""
    start = tmp_path / f"go-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, __file__, db_url, key, str(attempts), str(tokens),
                               "1" if settle else "0", str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, text=True) for _ in range(processes)]
    time.sleep(1.5)  # let them import and authenticate
    start.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(err)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


if __name__ == "__main__":
    url, api_key, n, size, do_settle, start = sys.argv[1:7]
    print(json.dumps(asyncio.run(run(url, api_key, int(n), int(size), do_settle == "1", start))))
