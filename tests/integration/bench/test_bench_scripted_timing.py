"""The load generator measures known timing exactly, and counts broken streams instead of crashing."""

from __future__ import annotations

import asyncio
import math

import pytest

from deeplocal.bench.datasets import LengthSpec, load_prompts
from deeplocal.bench.load import ClientOptions, LoadLevel, discover_model, run_level
from deeplocal.bench.metrics import parse_slo, summarize
from deeplocal.bench.stream import Target

TTFT, ITL, N = 0.200, 0.020, 16


def _prompts(count: int, n: int = N):
    return load_prompts("bundled-en", count=count, output_len=LengthSpec(n, n))


def _run(url: str, model: str, count: int, level: LoadLevel, *, endpoint: str = "chat",
         options: ClientOptions | None = None, n: int = N):
    target = Target(base_url=url, model=model, endpoint=endpoint)
    return asyncio.run(run_level(target, _prompts(count, n), level, options or ClientOptions()))


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_known_timing_is_measured_within_tight_tolerance(scripted_url, endpoint):
    run = _run(scripted_url, "timed", 4, LoadLevel(concurrency=1), endpoint=endpoint)
    summary = summarize(list(run.results), run.duration_s, parse_slo("ttft=500ms,tpot=50ms"))
    assert summary.completed == 4 and summary.failed == 0
    assert summary.total_output_tokens == 4 * N          # from the server's usage
    assert summary.requests_without_usage == 0
    assert all(r.prompt_tokens == len(p.text.split()) for r, p in zip(run.results, _prompts(4)))
    # TTFT: 200 ms (the role-only chunk sent at once must not count); loopback adds well under 20 ms.
    assert TTFT <= summary.ttft.mean < TTFT + 0.020, summary.ttft
    assert TTFT <= summary.ttft.p99 < TTFT + 0.035, summary.ttft
    # ITL: every gap is one 20 ms step; 15 gaps per request.
    assert summary.itl.n == 4 * (N - 1)
    assert abs(summary.itl.median - ITL) < 0.003, summary.itl
    assert abs(summary.itl.mean - ITL) < 0.002, summary.itl
    # TPOT = (E2E - TTFT) / (N - 1) = 20 ms; E2E = 200 + 15 * 20 = 500 ms.
    assert abs(summary.tpot.mean - ITL) < 0.002, summary.tpot
    assert abs(summary.e2e.median - (TTFT + (N - 1) * ITL)) < 0.020, summary.e2e
    assert summary.good_requests == 4 and math.isclose(summary.goodput, 4 / run.duration_s)
    assert math.isclose(summary.output_throughput, 4 * N / run.duration_s)


def test_concurrent_streams_keep_their_timing(scripted_url):
    run = _run(scripted_url, "timed", 8, LoadLevel(concurrency=4))
    summary = summarize(list(run.results), run.duration_s)
    assert summary.completed == 8
    assert TTFT <= summary.ttft.median < TTFT + 0.030
    assert abs(summary.tpot.median - ITL) < 0.003
    # Two waves of four 0.5 s requests: ~1.0 s, far from the 4.0 s a serial client would take.
    assert 1.0 <= run.duration_s < 1.4


def test_strict_slo_counts_no_good_requests(scripted_url):
    run = _run(scripted_url, "timed", 2, LoadLevel(concurrency=2))
    summary = summarize(list(run.results), run.duration_s, parse_slo("ttft=100ms"))
    assert summary.completed == 2 and summary.good_requests == 0 and summary.goodput == 0


def test_errors_are_counted_by_type(scripted_url):
    run = _run(scripted_url, "mixed", 10, LoadLevel(concurrency=1), n=6)
    summary = summarize(list(run.results), run.duration_s)
    assert summary.completed == 2
    assert summary.errors == {"connection_dropped": 2, "http_429": 2, "http_500": 2, "malformed_chunk": 2}
    assert summary.failed == 8 and summary.total_output_tokens == 12


def test_truncated_stream_is_an_error_and_missing_usage_is_flagged(scripted_url):
    truncated = _run(scripted_url, "truncated", 2, LoadLevel(concurrency=2), n=4)
    assert summarize(list(truncated.results), truncated.duration_s).errors == {"incomplete_stream": 2}
    no_usage = _run(scripted_url, "no-usage", 2, LoadLevel(concurrency=2), n=4)
    summary = summarize(list(no_usage.results), no_usage.duration_s)
    assert summary.completed == 2 and summary.requests_without_usage == 2
    assert summary.total_output_tokens == 8              # counted from streamed chunks, flagged


def test_new_connection_per_request(scripted_url):
    run = _run(scripted_url, "timed", 3, LoadLevel(concurrency=1),
               options=ClientOptions(new_connection=True), n=3)
    assert all(r.ok for r in run.results)


def test_time_cap_cancels_in_flight_requests(scripted_url):
    run = _run(scripted_url, "timed", 3, LoadLevel(concurrency=1),
               options=ClientOptions(max_duration_s=0.3))
    summary = summarize(list(run.results), run.duration_s)
    assert run.capped and summary.cancelled == 3 and summary.completed == 0 and summary.failed == 0
    assert run.duration_s < 0.45


def test_poisson_rate_spreads_arrivals(scripted_url):
    run = _run(scripted_url, "timed", 6, LoadLevel(concurrency=None, rate=10.0), n=2)
    starts = sorted(r.start for r in run.results)
    assert all(r.ok for r in run.results)
    assert starts[-1] - starts[0] > 0.05                  # not all at once
    assert summarize(list(run.results), run.duration_s).ttft.median < TTFT + 0.030


def test_discover_model(scripted_url):
    assert asyncio.run(discover_model(scripted_url, None)) == "timed"
