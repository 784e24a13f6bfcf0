"""Bench results as a deployment-report table, as JSON (read by `deeplocal cost`), and as a plot."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.table import Table

from deeplocal.bench.load import LevelResult
from deeplocal.bench.metrics import Slo, summarize

SCHEMA = "deeplocal.bench/1"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    url: str
    model: str
    precision: str
    hardware: str
    endpoint: str
    dataset: str
    input_len: str
    output_len: str
    requests_per_level: int
    warmup: int
    new_connection: bool
    slo: Slo


def describe_host(url: str) -> str:
    """This machine's CPU/GPU when the URL is loopback; otherwise ask the user (--hardware)."""
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        return "remote (pass --hardware)"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count() or 1} CPU threads"
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=5, check=True).stdout
            gpus = [g.strip() for g in out.splitlines() if g.strip()]
            if gpus:
                text += f", {len(gpus)}x {gpus[0]}"
        except (OSError, subprocess.SubprocessError):
            pass
    return text


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def level_dict(level: LevelResult, slo: Slo) -> dict[str, Any]:
    s = summarize(list(level.results), level.duration_s, slo)
    return {
        "concurrency": level.level.concurrency,
        "rate": level.level.rate if math.isfinite(level.level.rate) else None,
        "burstiness": level.level.burstiness,
        "capped": level.capped,
        "completed": s.completed,
        "failed": s.failed,
        "cancelled": s.cancelled,
        "errors": s.errors,
        "duration_s": _round(s.duration_s),
        "total_prompt_tokens": s.total_prompt_tokens,
        "total_output_tokens": s.total_output_tokens,
        "requests_without_usage": s.requests_without_usage,
        "request_throughput": _round(s.request_throughput, 4),
        "output_throughput": _round(s.output_throughput),
        "total_token_throughput": _round(s.total_token_throughput),
        "goodput": _round(s.goodput, 4),
        "good_requests": s.good_requests,
        "ttft": s.ttft.as_ms(),
        "tpot": s.tpot.as_ms(),
        "itl": s.itl.as_ms(),
        "e2e": s.e2e.as_ms(),
    }


def result_dict(info: RunInfo, levels: list[LevelResult]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "metadata": {
            "url": info.url, "model": info.model, "precision": info.precision, "hardware": info.hardware,
            "endpoint": info.endpoint, "dataset": info.dataset, "input_len": info.input_len,
            "output_len": info.output_len, "requests_per_level": info.requests_per_level,
            "warmup": info.warmup, "new_connection": info.new_connection, "slo_ms": info.slo.as_ms(),
        },
        "levels": [level_dict(level, info.slo) for level in levels],
    }


def _ms(stat: dict[str, Any], key: str) -> str:
    value = stat.get(key)
    return "-" if value is None else f"{value:,.1f}"


def _load(level: dict[str, Any]) -> str:
    parts = []
    if level.get("concurrency") is not None:
        parts.append(str(level["concurrency"]))
    if level.get("rate") is not None:
        parts.append(f"@{level['rate']:g}/s")
    return " ".join(parts) or "all"


COLUMNS = ("model", "precision", "hardware", "concurrency", "ok", "failed", "TTFT med ms", "TTFT p99 ms",
           "TPOT med ms", "TPOT p99 ms", "ITL med ms", "E2E med ms", "req/s", "out tok/s", "total tok/s",
           "goodput req/s")


def table_rows(results: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per level of each result, in COLUMNS order: the shape of a deployment report."""
    rows = []
    for result in results:
        meta = result["metadata"]
        for level in result["levels"]:
            rows.append((
                meta["model"], meta["precision"], meta["hardware"], _load(level), str(level["completed"]),
                str(level["failed"] + level["cancelled"]),
                _ms(level["ttft"], "median_ms"), _ms(level["ttft"], "p99_ms"),
                _ms(level["tpot"], "median_ms"), _ms(level["tpot"], "p99_ms"),
                _ms(level["itl"], "median_ms"), _ms(level["e2e"], "median_ms"),
                f"{level['request_throughput']:.2f}", f"{level['output_throughput']:.1f}",
                f"{level['total_token_throughput']:.1f}",
                "-" if level["goodput"] is None else f"{level['goodput']:.2f}",
            ))
    return rows


def notes(results: list[dict[str, Any]]) -> list[str]:
    """Error counts by type, SLOs, and missing usage: what a reader must know beside the numbers."""
    lines = []
    for result in results:
        meta = result["metadata"]
        lines.append(f"{meta['model']} at {meta['url']}: dataset={meta['dataset']} in={meta['input_len']} "
                     f"out={meta['output_len']} requests/level={meta['requests_per_level']}"
                     + (f" SLO={meta['slo_ms']}" if meta.get("slo_ms") else ""))
        for level in result["levels"]:
            if level["errors"] or level["cancelled"] or level["capped"]:
                detail = ", ".join(f"{k}={v}" for k, v in level["errors"].items())
                lines.append(f"  concurrency {_load(level)}: errors {detail or 'none'}; cancelled "
                             f"{level['cancelled']}{' (time cap reached)' if level['capped'] else ''}")
        no_usage = sum(level["requests_without_usage"] for level in result["levels"])
        if no_usage:
            lines.append(f"  {no_usage} requests came without usage: output tokens counted from streamed "
                         "chunks, prompt tokens unknown (total tok/s undercounts)")
    return lines


def render_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="deeplocal bench", title_justify="left", caption="\n".join(notes(results)),
                  caption_justify="left")
    for index, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if index < 3 else "right", overflow="fold")
    for row in table_rows(results):
        table.add_row(*row)
    return table


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines + [""] + notes(results)) + "\n"


def plot_results(results: list[dict[str, Any]], path: Path) -> None:
    """Latency vs throughput curves, one series per result: TTFT and TPOT against output tok/s."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'deeplocal[plot]'") from exc
    fig, (ax_ttft, ax_tpot) = plt.subplots(1, 2, figsize=(11, 4.2))
    for result in results:
        meta, levels = result["metadata"], [lv for lv in result["levels"] if lv["completed"]]
        label = f"{meta['model']} @ {urlparse(meta['url']).netloc}"
        xs = [lv["output_throughput"] for lv in levels]
        for ax, key in ((ax_ttft, "ttft"), (ax_tpot, "tpot")):
            ys = [lv[key]["median_ms"] for lv in levels]
            ax.plot(xs, ys, marker="o", label=label)
            for x, y, lv in zip(xs, ys, levels):
                if y is not None:
                    ax.annotate(_load(lv), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for ax, name in ((ax_ttft, "median TTFT (ms)"), (ax_tpot, "median TPOT (ms)")):
        ax.set_xlabel("output throughput (tok/s)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax_ttft.legend(fontsize=8)
    fig.suptitle("deeplocal bench: latency vs throughput (labels: concurrency)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
