"""Gateway overhead of the data layer per request: PII scan of a 2 KB zh+en prompt + audit append.

    python bench/pii_audit.py                 # table; --json for one JSON object; --n 5000
    python bench/pii_audit.py --presidio      # also time Presidio's own English recognizers, if installed

Reports p50 and p99 in microseconds for: the scan alone, the policy + pseudonymization, the audit
append (fsync interval / never), and the whole data path. bench/security_path.py (auth + limits) imports
`sample_prompt` and `data_path` from here to time the complete security path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from deeplocal.gateway.audit import AuditLog, AuditRecord
from deeplocal.gateway.pii import PiiPolicy, PiiScanner, Pseudonymizer, apply_policy, classify

_ZH = ("请帮我总结一下这份季度报告。本季度营收同比增长百分之十二，主要来自华东地区的新客户。"
       "我们计划在下个月推出新版本，并优化客服流程。")
_EN = ("Please summarize the following meeting notes. The team discussed the roadmap for the next "
       "quarter, including latency improvements and a new onboarding flow for enterprise customers. ")
_PII = " 联系人王芳，手机13912345678，邮箱wang.fang@example.cn。Contact Mr. Smith at 10.1.2.3. "


def sample_prompt(nbytes: int = 2048) -> str:
    """A mixed Chinese/English prompt of `nbytes` UTF-8 bytes with a few PII values near the end."""
    filler = (_ZH + _EN) * (nbytes // 200 + 2)
    text = ""
    for ch in filler:
        if len((text + ch + _PII).encode()) > nbytes:
            break
        text += ch
    text += _PII
    while len(text.encode()) < nbytes:
        text += " "
    return text


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {"p50_us": round(s[len(s) // 2] / 1000, 1), "p99_us": round(s[int(len(s) * 0.99)] / 1000, 1),
            "mean_us": round(statistics.fmean(s) / 1000, 1), "n": len(s)}


def timed(fn: Callable[[], object], n: int, warmup: int = 200) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - start)
    return percentiles(out)


def data_path(scanner: PiiScanner, log: AuditLog, policy: PiiPolicy, prompt: str, principal: str = "key-1") -> str:
    """What the gateway does with the data of one request: scan, policy, class, audit append."""
    findings = scanner.scan(prompt)
    outcome = apply_policy([prompt], [findings], policy)
    data_class = classify(findings, header=None, principal_default=None)
    log.append(AuditRecord(request_id=uuid.uuid4().hex, principal=principal, model="smollm2-135m",
                           upstream="local", prompt_tokens=512, completion_tokens=64, data_class=data_class,
                           finding_types=outcome.finding_types, status=200, latency_ms=1.0))
    return outcome.texts[0]


def run(n: int, presidio: bool) -> dict[str, object]:
    prompt = sample_prompt()
    scanner = PiiScanner()
    policy = PiiPolicy()
    results: dict[str, object] = {"prompt_bytes": len(prompt.encode()), "findings": len(scanner.scan(prompt))}
    results["scan_2kb"] = timed(lambda: scanner.scan(prompt), n)
    findings = scanner.scan(prompt)
    results["policy_redact"] = timed(lambda: apply_policy([prompt], [findings], PiiPolicy.parse("*=redact")), n)

    def round_trip() -> str:
        p = Pseudonymizer(scanner)
        return p.restore(p.pseudonymize(prompt, findings))

    results["pseudonymize_and_restore"] = timed(round_trip, n)
    with tempfile.TemporaryDirectory() as tmp:
        for fsync in ("interval", "never"):
            log = AuditLog(Path(tmp) / fsync, key=bytes(32), fsync=fsync)
            rec = AuditRecord(request_id="r", principal="key-1", model="m", finding_types=("CN_MOBILE",))
            results[f"audit_append_fsync_{fsync}"] = timed(lambda log=log, rec=rec: log.append(rec), n)
            log.close()
        log = AuditLog(Path(tmp) / "path", key=bytes(32), fsync="interval")
        results["data_path_total"] = timed(lambda: data_path(scanner, log, policy, prompt), n)
        verify_start = time.perf_counter()
        verified = log.verify()
        results["verify_records_per_s"] = round(verified.records / (time.perf_counter() - verify_start))
        log.close()
    if presidio:
        results["presidio_en_defaults_scan_2kb"] = _presidio(prompt, max(50, n // 20))
    return results


def _presidio(prompt: str, n: int) -> dict[str, float] | str:
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
    except ImportError:
        return "presidio-analyzer not installed"
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    registry.recognizers = [r for r in registry.recognizers if type(r).__name__ != "UrlRecognizer"]  # offline
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
    return timed(lambda: analyzer.analyze(text=prompt, language="en"), n, warmup=20)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--presidio", action="store_true")
    args = ap.parse_args(argv)
    results = run(args.n, args.presidio)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"prompt: {results['prompt_bytes']} bytes, {results['findings']} findings")
    print(f"{'step':36} {'p50 us':>9} {'p99 us':>9} {'mean us':>9}")
    for key, val in results.items():
        if isinstance(val, dict):
            print(f"{key:36} {val['p50_us']:9.1f} {val['p99_us']:9.1f} {val['mean_us']:9.1f}")
        elif key not in ("prompt_bytes", "findings"):
            print(f"{key:36} {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
