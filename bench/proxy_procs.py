"""Server processes for bench/gateway.py: the instant upstream, deeplocal with a bench key, the LiteLLM
proxy; readiness, a correctness smoke request, and CPU seconds of a process tree from /proc."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PROMPT = (
    "Summarise in one sentence why the sky looks blue during the day and red at sunset, "
    "for a ten year old who likes astronomy."
)


@dataclass
class Target:
    name: str
    url: str  # base, without /v1
    model: str
    headers: dict[str, str]
    proc: subprocess.Popen


@dataclass
class Cell:
    target: str
    mode: str
    concurrency: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_req: float | None = None
    error_detail: dict[str, int] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else cmd


def tree_cpu_s(pid: int) -> float:
    """user+system CPU seconds of `pid` and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        cur = todo.pop()
        total += times.get(cur, 0.0)
        todo.extend(p for p, parent in parents.items() if parent == cur)
    return total


def wait_idle(pids: list[int], *, below: float = 0.05, limit_s: float = 10.0) -> None:
    """Wait until the processes use under `below` of a core over 0.3 s (leftover requests drained)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = sum(tree_cpu_s(p) for p in pids)
        time.sleep(0.3)
        if (sum(tree_cpu_s(p) for p in pids) - before) / 0.3 < below:
            return


def launch(cmd: list[str], log: Path, *, cpu: int | None, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a server process (pinned to `cpu` if given) with stdout and stderr in `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(pinned(cmd, cpu), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def start_upstream(tmp: Path, cpu: int | None) -> Target:
    proc = subprocess.Popen(
        pinned([sys.executable, str(HERE / "fake_openai.py"), "--chunks", "20"], cpu),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v1/models", proc, tmp / "none", 30)
    return Target("direct", url, "fake", {}, proc)


def start_deeplocal(tmp: Path, upstream: str, data_class: str, cpu: int | None) -> Target:
    work = tmp / "deeplocal"
    work.mkdir()
    (work / "deeplocal.yaml").write_text(f"""
routing:
  upstreams:
    cloud:
      kind: remote
      base_url: {upstream}/v1
      api_key_env: BENCH_CLOUD_KEY
      may_receive: [public, internal]
  aliases:
    fast: [{{upstream: cloud, model: fake}}]
""")
    env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(work / "data"), "BENCH_CLOUD_KEY": "bench"}
    env.pop("DEEPLOCAL_CONFIG", None)
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "deeplocal",
            "keys",
            "create",
            "--tenant",
            "bench",
            "--name",
            "bench",
            "--json",
            "--rpm",
            "100000000",
            "--tpm",
            "1000000000000",
            "--max-streams",
            "10000",
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(created.stdout)["key"]
    port = free_port()
    log = work / "serve.log"
    proc = launch([sys.executable, "-m", "deeplocal", "serve", "--port", str(port), "--auth", "--threads", "1"],
                  log, cpu=cpu, cwd=work, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/ready", proc, log, 120)
    headers = {"Authorization": f"Bearer {key}", "X-Data-Class": data_class}
    return Target("deeplocal", url, "fast", headers, proc)


def litellm_exe(path: str) -> Path:
    p = Path(path)
    return p / "bin" / "litellm" if p.is_dir() else p


def start_litellm(tmp: Path, exe: Path, upstream: str, cpu: int | None) -> Target:
    work = tmp / "litellm"
    work.mkdir()
    (work / "cfg.yaml").write_text(f"""
model_list:
  - model_name: fake
    litellm_params: {{model: openai/fake, api_base: {upstream}/v1, api_key: x}}
""")
    port = free_port()
    master = "sk-bench-" + os.urandom(16).hex()  # 1.108 refuses to start without one
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "NO_DOCS": "True",
        "LITELLM_MASTER_KEY": master,
    }
    env.pop("DATABASE_URL", None)
    log = work / "litellm.log"
    proc = launch([str(exe), "--config", str(work / "cfg.yaml"), "--host", "127.0.0.1", "--port", str(port),
                   "--num_workers", "1"], log, cpu=cpu, cwd=work, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/liveliness", proc, log, 180)
    return Target("litellm", url, "fake", {"Authorization": f"Bearer {master}"}, proc)


def body(target: Target, stream: bool) -> dict[str, Any]:
    return {
        "model": target.model,
        "stream": stream,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": PROMPT}],
    }


def smoke(target: Target, stream: bool) -> None:
    """One request through the target; raise unless it is a complete, correct reply."""
    r = httpx.post(
        target.url + "/v1/chat/completions", json=body(target, stream), headers=target.headers, timeout=30
    )
    if r.status_code != 200:
        raise RuntimeError(f"{target.name} stream={stream}: HTTP {r.status_code}: {r.text[:500]}")
    if target.name == "deeplocal" and r.headers.get("x-deeplocal-upstream") != "cloud":
        raise RuntimeError(f"deeplocal did not route to the fake upstream: {dict(r.headers)}")
    if stream:
        events = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
        text = "".join(
            (c["choices"][0]["delta"].get("content") or "")
            for c in map(json.loads, events[:-1])
            if c.get("choices")
        )
        ok = events and events[-1] == "[DONE]" and text.startswith("The quick brown fox")
    else:
        ok = r.json()["choices"][0]["message"]["content"].startswith("The quick brown fox")
    if not ok:
        raise RuntimeError(f"{target.name} stream={stream}: unexpected reply {r.text[:500]}")
