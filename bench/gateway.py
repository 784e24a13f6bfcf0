"""Proxy overhead: direct vs deeplocal (security path on) vs the LiteLLM proxy, against one instant upstream.

    python bench/gateway.py --litellm /work/peers/litellm-venv           # ~3 min; prints ratios
    python bench/gateway.py --json --duration 5 --concurrency 1,16,64 --pin

One run starts an instant OpenAI-compatible upstream (bench/fake_openai.py: a fixed chat completion, or
20 SSE chunks + usage + [DONE] when streaming), `deeplocal serve --auth` routing the alias `fast` to it as
a remote upstream (a bench key with generous limits, so auth, limits, PII scan, audit and ledger all run;
`X-Data-Class: public` by default), and `litellm --num_workers 1` (offline cost map, no database, a
master key) pointing at the same upstream. Each server is one worker process (bench/proxy_procs.py starts
them). `wrk` (one thread, keep-alive connections, a Lua script for the POST) drives each target at each
concurrency in streaming and non-streaming mode: a 1 s warm-up, then `--duration` seconds measured.
Reported: req/s, p50/p99 latency of whole responses, CPU ms per request of the target's process tree,
and per (mode, concurrency) the ratio deeplocal/LiteLLM req/s and the p50 each proxy adds over direct.
Between runs the script waits for the servers to go idle, so requests left over from one run do not load
the next. `--pin` puts the proxies on CPU 0 and upstream + wrk on CPU 1. Without `--litellm` (or when
it cannot start) the LiteLLM column is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from proxy_procs import (
    Cell,
    Target,
    body,
    litellm_exe,
    pinned,
    smoke,
    start_deeplocal,
    start_litellm,
    start_upstream,
    tree_cpu_s,
    wait_idle,
)

TARGET_GOALS = {"added_p50_ms_c1": 1.0, "rps_ratio_vs_litellm": 10.0}


LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(
    target: Target, stream: bool, conc: int, seconds: float, tmp: Path, cpu: int | None
) -> dict[str, int]:
    headers = {"Content-Type": "application/json", **target.headers}
    lua = LUA.format(
        body=json.dumps(body(target, stream)),
        headers="\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
    )
    script = tmp / f"{target.name}-{stream}-{conc}.lua"
    script.write_text(lua)
    cmd = pinned(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            target.url + "/v1/chat/completions",
        ],
        cpu,
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    return json.loads(line[len("WRKJSON ") :])


def measure(
    target: Target, stream: bool, conc: int, args: argparse.Namespace, tmp: Path, busy: list[int]
) -> Cell:
    cpu = 1 if args.pin else None
    run_wrk(target, stream, conc, args.warmup, tmp, cpu)
    wait_idle(busy)
    cpu0 = tree_cpu_s(target.proc.pid)
    res = run_wrk(target, stream, conc, args.duration, tmp, cpu)
    cpu_s = tree_cpu_s(target.proc.pid) - cpu0
    wait_idle(busy)
    errors = {k: res[k] for k in ("connect", "read", "write", "status", "timeout") if res[k]}
    n = res["requests"]
    return Cell(
        target.name,
        "stream" if stream else "non-stream",
        conc,
        n,
        n / (res["duration_us"] / 1e6),
        res["p50_us"] / 1000,
        res["p99_us"] / 1000,
        sum(errors.values()),
        cpu_s * 1000 / n if n else None,
        errors,
    )


def summarise(cells: list[Cell]) -> list[dict[str, Any]]:
    by = {(c.target, c.mode, c.concurrency): c for c in cells}
    rows = []
    for mode, conc in sorted({(c.mode, c.concurrency) for c in cells}):
        d, dl, ll = (by.get((t, mode, conc)) for t in ("direct", "deeplocal", "litellm"))
        rows.append(
            {
                "mode": mode,
                "concurrency": conc,
                "deeplocal_added_p50_ms": dl.p50_ms - d.p50_ms if d and dl else None,
                "litellm_added_p50_ms": ll.p50_ms - d.p50_ms if d and ll else None,
                "rps_ratio_deeplocal_vs_litellm": dl.rps / ll.rps if dl and ll and ll.rps else None,
            }
        )
    return rows


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in sorted({r["mode"] for r in rows}):
        mine = [r for r in rows if r["mode"] == mode]
        c1 = [r["deeplocal_added_p50_ms"] for r in mine if r["concurrency"] == 1]
        ratios = [r["rps_ratio_deeplocal_vs_litellm"] for r in mine if r["rps_ratio_deeplocal_vs_litellm"]]
        out[mode] = {
            "added_p50_ms_c1": c1[0] if c1 else None,
            "added_p50_under_1ms": c1[0] < TARGET_GOALS["added_p50_ms_c1"]
            if c1 and c1[0] is not None
            else None,
            "min_rps_ratio_vs_litellm": min(ratios) if ratios else None,
            "rps_at_least_10x": min(ratios) >= TARGET_GOALS["rps_ratio_vs_litellm"] if ratios else None,
        }
    return out


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def render(
    cells: list[Cell], rows: list[dict[str, Any]], verdicts: dict[str, Any], meta: dict[str, Any]
) -> str:
    by = {(c.target, c.mode, c.concurrency): c for c in cells}
    targets = [t for t in ("direct", "deeplocal", "litellm") if any(c.target == t for c in cells)]
    title = (
        f"proxy overhead, one run: {meta['duration_s']} s per level after {meta['warmup_s']} s warm-up; "
        f"data class {meta['data_class']}; pinned={meta['pinned']}; load before start {meta['loadavg']}"
    )
    lines = [title]
    for mode in ("non-stream", "stream"):
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue
        lines.append(f"\n[{mode}]  req/s | p50 ms | p99 ms | CPU ms/req of the target process")
        head = (
            "  conc "
            + "".join(f"| {t:^33} " for t in targets)
            + "| dl/LiteLLM req/s | dl +p50 ms | LL +p50 ms"
        )
        lines.append(head)
        for r in mine:
            row = f"  {r['concurrency']:>4} "
            for t in targets:
                c = by.get((t, mode, r["concurrency"]))
                cell = (
                    "-"
                    if c is None
                    else (
                        f"{c.rps:8.1f} {c.p50_ms:8.2f} {c.p99_ms:8.2f} "
                        f"{fmt(c.cpu_ms_per_req, '5.2f')}" + ("!" if c.errors else "")
                    )
                )
                row += f"| {cell:>33} "
            row += (
                f"| {fmt(r['rps_ratio_deeplocal_vs_litellm'], '15.1f') + 'x':>16} "
                f"| {fmt(r['deeplocal_added_p50_ms'], '10.2f')} | {fmt(r['litellm_added_p50_ms'], '10.2f')}"
            )
            lines.append(row)
    lines.append("\n(! = errors in that run; see --json)")
    for mode, v in verdicts.items():
        lines.append(
            f"target [{mode}]: added p50 at c=1 {fmt(v['added_p50_ms_c1'], '.2f')} ms (< 1 ms: "
            f"{v['added_p50_under_1ms']}); min req/s ratio vs LiteLLM "
            f"{fmt(v['min_rps_ratio_vs_litellm'], '.1f')}x"
            f" (>= 10x: {v['rps_at_least_10x']})"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Proxy overhead: direct vs deeplocal vs LiteLLM (see module doc)."
    )
    p.add_argument("--litellm", help="LiteLLM venv dir or `litellm` executable; skipped when absent")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per level (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level (default 1)")
    p.add_argument("--concurrency", default="1,16,64", help="comma separated (default 1,16,64)")
    p.add_argument("--modes", default="non-stream,stream", help="non-stream and/or stream")
    p.add_argument(
        "--data-class",
        default="public",
        choices=["public", "internal"],
        help="X-Data-Class sent to deeplocal (internal pseudonymizes PII before it leaves)",
    )
    p.add_argument("--pin", action="store_true", help="proxies on CPU 0, upstream and wrk on CPU 1")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("bench/gateway.py needs wrk (apt-get install -y wrk)", file=sys.stderr)
        return 2
    concs = [int(c) for c in args.concurrency.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    targets: list[Target] = []
    meta = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "data_class": args.data_class,
        "pinned": args.pin,
        "loadavg": os.getloadavg()[0],
        "litellm": None,
    }
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as name:
        tmp = Path(name)
        try:
            up = start_upstream(tmp, 1 if args.pin else None)
            targets.append(up)
            targets.append(start_deeplocal(tmp, up.url, args.data_class, 0 if args.pin else None))
            if args.litellm and litellm_exe(args.litellm).exists():
                try:
                    targets.append(
                        start_litellm(tmp, litellm_exe(args.litellm), up.url, 0 if args.pin else None)
                    )
                    meta["litellm"] = str(litellm_exe(args.litellm))
                except RuntimeError as exc:
                    print(f"LiteLLM skipped: could not start it: {exc}", file=sys.stderr)
            else:
                print("LiteLLM skipped: pass --litellm PATH (a venv with `litellm[proxy]`)", file=sys.stderr)
            for t in targets:
                for m in modes:
                    smoke(t, m == "stream")
            busy = [t.proc.pid for t in targets]
            cells: list[Cell] = []
            plan = [(m, c, t) for m in modes for c in concs for t in targets]
            for i, (m, c, t) in enumerate(plan, 1):
                print(f"[{i}/{len(plan)}] {t.name} {m} c={c} ...", file=sys.stderr, flush=True)
                cells.append(measure(t, m == "stream", c, args, tmp, busy))
        finally:
            for t in targets:
                t.proc.terminate()
            for t in targets:
                try:
                    t.proc.wait(15)
                except subprocess.TimeoutExpired:
                    t.proc.kill()
                    t.proc.wait()
    rows = summarise(cells)
    verdicts = verdict(rows)
    if args.json:
        print(
            json.dumps(
                {"meta": meta, "cells": [asdict(c) for c in cells], "ratios": rows, "targets": verdicts},
                indent=2,
            )
        )
    else:
        print(render(cells, rows, verdicts, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
