"""The table users want from `models compare A B ...`: pure functions of EvalReports (first = baseline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deeplocal.models.evaluate import EvalReport


@dataclass(frozen=True, slots=True)
class CompareRow:
    model: str
    quantization: str
    file_bytes: int
    rss_bytes: int
    perplexity: dict[str, float]
    accuracy: float | None
    decode_tps: float
    prefill_tps: float
    size_reduction_pct: float  # file size saved vs the baseline
    memory_reduction_pct: float  # resident memory saved vs the baseline
    ppl_change_pct: dict[str, float]  # + is worse
    accuracy_retained_pct: float | None  # multiple-choice accuracy relative to the baseline
    decode_speedup: float
    prefill_speedup: float


def _pct_saved(base: float, value: float) -> float:
    return 100.0 * (1.0 - value / base) if base else 0.0


def _ratio(value: float, base: float) -> float:
    return value / base if base else 0.0


def compare(reports: Sequence[EvalReport]) -> list[CompareRow]:
    if not reports:
        return []
    base = reports[0]
    sets = {r.eval_set for r in reports}
    if len(sets) > 1:
        raise ValueError(f"reports come from different evaluation sets {sorted(sets)}: re-run eval")
    rows = []
    for r in reports:
        retained = (100.0 * r.accuracy / base.accuracy
                    if r.accuracy is not None and base.accuracy else None)
        rows.append(CompareRow(
            model=r.model, quantization=r.quantization, file_bytes=r.file_bytes, rss_bytes=r.rss_bytes,
            perplexity=dict(r.perplexity), accuracy=r.accuracy, decode_tps=r.decode_tps,
            prefill_tps=r.prefill_tps, size_reduction_pct=_pct_saved(base.file_bytes, r.file_bytes),
            memory_reduction_pct=_pct_saved(base.rss_bytes, r.rss_bytes),
            ppl_change_pct={k: 100.0 * (v / base.perplexity[k] - 1.0)
                            for k, v in r.perplexity.items() if base.perplexity.get(k)},
            accuracy_retained_pct=retained, decode_speedup=_ratio(r.decode_tps, base.decode_tps),
            prefill_speedup=_ratio(r.prefill_tps, base.prefill_tps),
        ))
    return rows


def render_markdown(rows: Sequence[CompareRow]) -> str:
    """A Markdown table (also what the CLI prints)."""
    langs = sorted({k for r in rows for k in r.perplexity})
    head = (["model", "quant", "file MB", "size -%", "RSS MB", "mem -%"] + [f"ppl {k}" for k in langs]
            + [f"ppl {k} Δ%" for k in langs] + ["acc %", "acc retained %", "decode tok/s", "speed-up"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.model, r.quantization, f"{r.file_bytes / 1e6:.1f}", f"{r.size_reduction_pct:.1f}",
                 f"{r.rss_bytes / 1e6:.0f}", f"{r.memory_reduction_pct:.1f}"]
        cells += [f"{r.perplexity[k]:.3f}" if k in r.perplexity else "-" for k in langs]
        cells += [f"{r.ppl_change_pct[k]:+.2f}" if k in r.ppl_change_pct else "-" for k in langs]
        cells += [f"{100 * r.accuracy:.1f}" if r.accuracy is not None else "-",
                  f"{r.accuracy_retained_pct:.1f}" if r.accuracy_retained_pct is not None else "-",
                  f"{r.decode_tps:.1f}", f"{r.decode_speedup:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
