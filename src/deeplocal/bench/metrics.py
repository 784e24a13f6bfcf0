"""Per-request results and their summary, with vLLM `benchmark_serving` definitions. Pure functions.

- TTFT: send -> first chunk carrying generated text.
- ITL: every gap between consecutive chunks carrying generated text (pooled over requests).
- E2E: send -> last data event of the stream.
- TPOT: (E2E - TTFT) / (output tokens - 1), one value per request with more than one output token.
- Goodput: requests meeting every SLO at once, per second (TPOT counts as 0 for 1-token outputs).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0)
SLO_METRICS = ("ttft", "tpot", "itl", "e2e")


class SloParseError(ValueError):
    """An --slo value could not be parsed; the message says which part."""


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What one request produced. Times are seconds; `error` is None on success."""

    ok: bool
    error: str | None = None
    detail: str = ""
    ttft: float | None = None
    e2e: float | None = None
    itl: tuple[float, ...] = ()
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    chunks: int = 0
    usage_reported: bool = False
    start: float = 0.0                  # perf_counter at send, for the run's duration

    @property
    def tpot(self) -> float | None:
        if not self.ok or self.ttft is None or self.e2e is None or not self.output_tokens:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1) if self.output_tokens > 1 else None


@dataclass(frozen=True, slots=True)
class Stat:
    """mean, median, p90, p99 (seconds) of one metric; all None when there were no samples."""

    n: int
    mean: float | None
    median: float | None
    p90: float | None
    p99: float | None

    def as_ms(self) -> dict[str, float | int | None]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000.0, 3)

        return {"n": self.n, "mean_ms": ms(self.mean), "median_ms": ms(self.median),
                "p90_ms": ms(self.p90), "p99_ms": ms(self.p99)}


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objectives in seconds; None means not set."""

    ttft: float | None = None
    tpot: float | None = None
    itl: float | None = None
    e2e: float | None = None

    @property
    def is_set(self) -> bool:
        return any(v is not None for v in (self.ttft, self.tpot, self.itl, self.e2e))

    def as_ms(self) -> dict[str, float]:
        return {k: round(v * 1000.0, 3) for k in SLO_METRICS if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, slots=True)
class Summary:
    completed: int
    failed: int
    cancelled: int
    duration_s: float
    total_prompt_tokens: int
    total_output_tokens: int
    requests_without_usage: int
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    goodput: float | None                # good requests per second; None without SLO
    good_requests: int | None
    ttft: Stat
    tpot: Stat
    itl: Stat
    e2e: Stat
    errors: dict[str, int] = field(default_factory=dict)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an ascending list."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def stat(values: list[float]) -> Stat:
    if not values:
        return Stat(0, None, None, None, None)
    ordered = sorted(values)
    p50, p90, p99 = (percentile(ordered, q) for q in PERCENTILES)
    return Stat(len(ordered), sum(ordered) / len(ordered), p50, p90, p99)


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")


def parse_slo(text: str | None) -> Slo:
    """`ttft=500ms,tpot=50ms` (units ms or s; a bare number is milliseconds, as in vLLM's --goodput)."""
    if not text:
        return Slo()
    values: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, raw = part.partition("=")
        if not sep:
            key, sep, raw = part.partition(":")
        key = key.strip().lower().replace("e2el", "e2e")
        if not sep or key not in SLO_METRICS:
            raise SloParseError(f"bad SLO '{part.strip()}': use name=value with name in {SLO_METRICS}")
        match = _DURATION.match(raw)
        if not match:
            raise SloParseError(f"bad SLO value '{raw.strip()}' for {key}: use e.g. 500ms or 0.5s")
        number = float(match.group(1))
        values[key] = number if match.group(2) == "s" else number / 1000.0
    return Slo(**values)


def meets_slo(result: RequestResult, slo: Slo) -> bool:
    """A successful request is good when every set SLO holds (vLLM: TPOT is 0 for 1-token outputs)."""
    if not result.ok:
        return False
    measured = {
        "ttft": result.ttft,
        "tpot": result.tpot or 0.0,
        "itl": max(result.itl) if result.itl else 0.0,
        "e2e": result.e2e,
    }
    for name in SLO_METRICS:
        limit = getattr(slo, name)
        value = measured[name]
        if limit is not None and (value is None or value > limit):
            return False
    return True


def summarize(results: list[RequestResult], duration_s: float, slo: Slo = Slo()) -> Summary:
    """Aggregate one run (one concurrency or rate level)."""
    done = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok and r.error != "cancelled"]
    cancelled = sum(1 for r in results if r.error == "cancelled")
    prompt_tokens = sum(r.prompt_tokens or 0 for r in done)
    output_tokens = sum(r.output_tokens or 0 for r in done)
    tpots = [t for r in done if (t := r.tpot) is not None]
    dur = max(duration_s, 1e-9)
    good = sum(1 for r in done if meets_slo(r, slo)) if slo.is_set else None
    return Summary(
        completed=len(done),
        failed=len(failed),
        cancelled=cancelled,
        duration_s=duration_s,
        total_prompt_tokens=prompt_tokens,
        total_output_tokens=output_tokens,
        requests_without_usage=sum(1 for r in done if not r.usage_reported),
        request_throughput=len(done) / dur,
        output_throughput=output_tokens / dur,
        total_token_throughput=(prompt_tokens + output_tokens) / dur,
        goodput=None if good is None else good / dur,
        good_requests=good,
        ttft=stat([r.ttft for r in done if r.ttft is not None]),
        tpot=stat(tpots),
        itl=stat([gap for r in done for gap in r.itl]),
        e2e=stat([r.e2e for r in done if r.e2e is not None]),
        errors=dict(sorted(Counter(r.error for r in failed if r.error).items())),
    )

