"""Gateway overhead: the whole security path per request, in microseconds (p50 / p99).

End-to-end proxy overhead over HTTP (direct vs deeplocal vs LiteLLM, req/s and added p50/p99): bench/gateway.py.

    python bench/security_path.py                 # 2,000 requests after 200 warm-up, 3 runs, median of runs
    python bench/security_path.py --json --requests 5000

Per request, in the order the API runs them: authenticate (Bearer key -> Principal, key cache warm),
scope + model checks, PII scan of a 2 KB prompt, reserve (rate limits + quota, one write transaction on
the shared SQLite file), audit append, settle (refund, stream lease, usage-ledger row: one write
transaction). Requests run one after another on one event loop, so the numbers are latency added to
each request, not throughput. The PII and audit stages are hooks: they run when
`deeplocal.gateway.pii` / `deeplocal.gateway.audit` provide them and are reported as skipped otherwise.
Variants: `cold-cache` re-reads the key from the database every request (key_cache_ttl_s=0);
`no-limits` is a key without limits (no counter transaction, ledger only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.principal import Limits
from deeplocal.gateway.service import Gateway

STAGES = ("auth", "access", "pii", "reserve", "audit", "settle")
PROMPT_2KB = (
    "Please summarise the following support ticket and draft a polite reply. The customer, Jane Doe, "
    "wrote from jane.doe@example.com and asked us to call her back on +1 415 555 0132 about invoice "
    "INV-20931. 客户张伟的手机号是13812345678，邮箱 zhang.wei@example.cn。 "
) + ("The order arrived late and two items were missing from the box; she would like a refund or a "
     "replacement, whichever is faster, and asks that we confirm the shipping address on file. ") * 9
PROMPT_2KB = PROMPT_2KB[:2048]


def pii_hook() -> Callable[[str], Any] | None:
    """The PII stage: scan the prompt (None when deeplocal.gateway.pii is not installed)."""
    try:
        from deeplocal.gateway.pii import PiiScanner
    except ImportError:
        return None
    return PiiScanner().scan


def audit_hook(workdir: Path) -> Callable[[dict[str, Any]], Any] | None:
    """The audit stage: append one record (default settings: fsync at most once a second)."""
    from deeplocal.gateway.audit.log import AuditLog
    from deeplocal.gateway.audit.records import AuditRecord

    log = AuditLog(workdir / "audit")
    log.prepare()

    def append(fields: dict[str, Any]) -> int:
        return log.append(AuditRecord(**fields))

    return append


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_run(gateway: Gateway, key: str, *, requests: int, warmup: int, scan, append) -> dict[str, list[float]]:
    header = f"Bearer {key}"
    samples: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    clock = time.perf_counter
    for i in range(warmup + requests):
        t0 = clock()
        principal = await gateway.authenticate(header)
        t1 = clock()
        gateway.require_scope(principal, "inference")
        gateway.require_model(principal, "deepseek-v3")
        t2 = clock()
        findings = scan(PROMPT_2KB) if scan else ()
        t3 = clock()
        reservation = await gateway.reserve(principal, model="deepseek-v3", prompt_tokens=512, max_tokens=256)
        t4 = clock()
        if append:
            append({"request_id": reservation.reservation_id, "principal": principal.key_id,
                    "tenant": principal.tenant, "model": "deepseek-v3", "upstream": "local",
                    "prompt_tokens": 512, "completion_tokens": 200, "data_class": "restricted",
                    "finding_types": tuple(sorted({f.entity_type for f in findings}))})
        t5 = clock()
        await gateway.settle(reservation, prompt_tokens=512, completion_tokens=200, upstream="local", status="ok")
        t6 = clock()
        if i >= warmup:
            for stage, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))):
                samples[stage].append((b - a) * 1e6)
            samples["total"].append((t6 - t0) * 1e6)
    return samples


def run_variant(name: str, *, limits: Limits, cache_ttl: float, requests: int, warmup: int, runs: int,
                scan, append_factory) -> dict[str, Any]:
    results: list[dict[str, list[float]]] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="dl-bench-gw-") as tmp:
            gateway = Gateway(GatewaySettings(auth=True, key_cache_ttl_s=cache_ttl),
                              f"sqlite:///{Path(tmp) / 'deeplocal.db'}")
            try:
                key = gateway.keys.create(tenant="bench", name=f"{name}-{run}", models=["deepseek-*"],
                                          limits=limits).key
                append = append_factory(Path(tmp)) if append_factory else None
                results.append(asyncio.run(one_run(gateway, key, requests=requests, warmup=warmup, scan=scan,
                                                   append=append)))
            finally:
                gateway.close()
    summary: dict[str, Any] = {"variant": name, "requests": requests, "runs": runs}
    for stage in (*STAGES, "total"):
        p50s = [statistics.median(r[stage]) for r in results]
        p99s = [percentile(r[stage], 0.99) for r in results]
        summary[stage] = {"p50_us": round(statistics.median(p50s), 1), "p99_us": round(statistics.median(p99s), 1)}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    scan = pii_hook()
    limited = Limits(rpm=10**7, tpm=10**12, monthly_tokens=10**15, max_streams=10**6)
    variants = [
        run_variant("full", limits=limited, cache_ttl=5.0, requests=args.requests, warmup=args.warmup,
                    runs=args.runs, scan=scan, append_factory=audit_hook),
        run_variant("cold-cache", limits=limited, cache_ttl=0.0, requests=args.requests, warmup=args.warmup,
                    runs=args.runs, scan=scan, append_factory=audit_hook),
        run_variant("no-limits", limits=Limits(), cache_ttl=5.0, requests=args.requests, warmup=args.warmup,
                    runs=args.runs, scan=scan, append_factory=audit_hook),
    ]
    hooks = {"pii": "on" if scan else "skipped (deeplocal.gateway.pii missing)",
             "audit": "on (AuditLog, fsync interval 1 s)"}
    report = {"hooks": hooks, "python": sys.version.split()[0], "variants": variants}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gateway security path, µs per request (p50 / p99), {args.requests} requests x {args.runs} runs; "
          f"pii: {hooks['pii']}; audit: {hooks['audit']}")
    print(f"{'variant':<11}" + "".join(f"{s:>16}" for s in (*STAGES, "total")))
    for v in variants:
        print(f"{v['variant']:<11}" + "".join(f"{v[s]['p50_us']:>8.0f}/{v[s]['p99_us']:<7.0f}"
                                              for s in (*STAGES, "total")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
