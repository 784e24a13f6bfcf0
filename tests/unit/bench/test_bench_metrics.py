"""Bench statistics with vLLM's definitions, SLO parsing and goodput. Pure, no I/O."""

from __future__ import annotations

import math
import random

import pytest

from deeplocal.bench.metrics import RequestResult, SloParseError, parse_slo, percentile, stat, summarize


def _ok(ttft, e2e, n, itl=(), prompt=10, usage=True, start=1.0):
    return RequestResult(ok=True, ttft=ttft, e2e=e2e, itl=tuple(itl), prompt_tokens=prompt, output_tokens=n,
                         chunks=n, usage_reported=usage, start=start)


def test_percentile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    for size in (1, 2, 5, 17, 100):
        values = sorted(rng.random() for _ in range(size))
        for q in (0, 50, 90, 99, 100):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_tpot_is_e2e_minus_ttft_over_tokens_minus_one():
    r = _ok(0.2, 0.5, 16)
    assert r.tpot == pytest.approx(0.02)
    assert _ok(0.2, 0.2, 1).tpot is None                      # one token: no TPOT sample


def test_summary_aggregates():
    results = [
        _ok(0.1, 0.5, 5, itl=(0.1, 0.1, 0.1, 0.1), prompt=7),
        _ok(0.3, 0.9, 4, itl=(0.2, 0.2, 0.2), prompt=3, usage=False),
        _ok(0.2, 0.2, 1, prompt=2),
        RequestResult(ok=False, error="http_500", start=1.0),
        RequestResult(ok=False, error="http_500", start=1.0),
        RequestResult(ok=False, error="timeout", start=1.0),
        RequestResult(ok=False, error="cancelled", start=1.0),
    ]
    s = summarize(results, 2.0, parse_slo("ttft=250ms,tpot=150ms"))
    assert (s.completed, s.failed, s.cancelled) == (3, 3, 1)
    assert s.errors == {"http_500": 2, "timeout": 1}
    assert (s.total_prompt_tokens, s.total_output_tokens, s.requests_without_usage) == (12, 10, 1)
    assert s.request_throughput == 1.5 and s.output_throughput == 5.0 and s.total_token_throughput == 11.0
    assert s.tpot.n == 2 and s.tpot.mean == pytest.approx((0.1 + 0.2) / 2)
    assert s.itl.n == 7 and s.itl.median == pytest.approx(0.1)
    assert s.ttft.median == pytest.approx(0.2) and s.e2e.p99 == pytest.approx(percentile([0.2, 0.5, 0.9], 99))
    # Good: the first (ttft 100 ms, tpot 100 ms) and the 1-token one (tpot counts as 0); not the second.
    assert s.good_requests == 2 and s.goodput == 1.0


def test_empty_run():
    s = summarize([], 0.0)
    assert s.completed == 0 and s.ttft.mean is None and s.goodput is None and math.isfinite(s.output_throughput)
    assert stat([]).as_ms() == {"n": 0, "mean_ms": None, "median_ms": None, "p90_ms": None, "p99_ms": None}


def test_parse_slo():
    slo = parse_slo("ttft=500ms,tpot=0.05s, e2el:2000")
    assert (slo.ttft, slo.tpot, slo.e2e, slo.itl) == (0.5, 0.05, 2.0, None)
    assert slo.as_ms() == {"ttft": 500.0, "tpot": 50.0, "e2e": 2000.0}
    assert not parse_slo(None).is_set
    for bad in ("ttft", "speed=3ms", "ttft=fast"):
        with pytest.raises(SloParseError):
            parse_slo(bad)
