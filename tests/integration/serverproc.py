"""Start a real `deeplocal serve` subprocess on 127.0.0.1:0 and find its port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

_URL = re.compile(r"on (https?)://([0-9.]+):(\d+)/v1")


@dataclass
class ServerProc:
    proc: subprocess.Popen
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


def start_server(tmp: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> ServerProc:
    log_path = tmp / f"server-{time.monotonic_ns()}.log"
    full_env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(tmp / "data"), **(env or {})}
    full_env.pop("DEEPLOCAL_CONFIG", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deeplocal", "serve", "--port", "0", "--threads", "1", *args],
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        match = _URL.search(log_path.read_text(errors="replace"))
        if match:
            base = f"{match.group(1)}://{match.group(2)}:{match.group(3)}"
            try:
                if httpx.get(base + "/ready", timeout=2, verify=False).status_code == 200:
                    return ServerProc(proc, base, log_path)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")
