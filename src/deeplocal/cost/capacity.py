"""Local capacity from a `deeplocal bench --json` result: output tokens/s at the chosen SLO."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplocal.bench.metrics import Slo

BENCH_SCHEMA = "deeplocal.bench/1"


class CapacityError(ValueError):
    """The bench result is unreadable or no level meets the SLO."""


@dataclass(frozen=True, slots=True)
class Capacity:
    output_tokens_per_s: float
    concurrency: int | None
    ttft_p90_ms: float | None
    tpot_p90_ms: float | None
    source: str


def _meets(level: dict[str, Any], slo: Slo, percentile: str) -> bool:
    for name in ("ttft", "tpot", "itl", "e2e"):
        limit = getattr(slo, name)
        if limit is None:
            continue
        value = (level.get(name) or {}).get(f"{percentile}_ms")
        if value is None or value > limit * 1000.0:
            return False
    return True


def capacity_from_bench(result: dict[str, Any], slo: Slo, *, percentile: str = "p90",
                        source: str = "") -> Capacity:
    """The highest output throughput among levels whose `percentile` latencies meet every SLO
    (without an SLO: the highest measured), from levels where no request failed."""
    if result.get("schema") != BENCH_SCHEMA:
        raise CapacityError(f"{source or 'input'} is not a deeplocal bench result ({BENCH_SCHEMA})")
    levels = [lv for lv in result.get("levels", []) if lv.get("completed") and not lv.get("failed")]
    fitting = [lv for lv in levels if _meets(lv, slo, percentile)]
    if not fitting:
        raise CapacityError(f"no error-free level in {source or 'the bench result'} meets the SLO "
                            f"{slo.as_ms()} ms at {percentile}")
    best = max(fitting, key=lambda lv: lv["output_throughput"])
    return Capacity(
        output_tokens_per_s=float(best["output_throughput"]),
        concurrency=best.get("concurrency"),
        ttft_p90_ms=(best.get("ttft") or {}).get("p90_ms"),
        tpot_p90_ms=(best.get("tpot") or {}).get("p90_ms"),
        source=source,
    )


def load_capacity(path: Path, slo: Slo, *, percentile: str = "p90") -> Capacity:
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CapacityError(f"cannot read bench result {path}: {exc}") from exc
    if not isinstance(result, dict):
        raise CapacityError(f"{path} is not a deeplocal bench result")
    if not slo.is_set and (meta_slo := (result.get("metadata") or {}).get("slo_ms")):
        slo = Slo(**{k: v / 1000.0 for k, v in meta_slo.items()})
    return capacity_from_bench(result, slo, percentile=percentile, source=str(path))
