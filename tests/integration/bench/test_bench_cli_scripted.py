"""`deeplocal bench` end to end against the scripted server: table, JSON that cost reads, plot, report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deeplocal.bench.metrics import parse_slo
from deeplocal.cli.bench import app
from deeplocal.cost.capacity import load_capacity

runner = CliRunner()


def test_sweep_writes_json_that_cost_reads(scripted_url, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["--url", scripted_url, "--concurrency", "1,4", "--requests", "4",
                                 "--output-len", "8", "--warmup", "1", "--slo", "ttft=400ms,tpot=40ms",
                                 "--precision", "Q4_1", "--hardware", "test box", "--json", str(out),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "TTFT med ms" in result.output and "test box" in result.output
    data = json.loads(out.read_text())
    assert data["metadata"]["model"] == "timed" and data["metadata"]["slo_ms"] == {"ttft": 400.0, "tpot": 40.0}
    assert [lv["concurrency"] for lv in data["levels"]] == [1, 4]
    assert all(lv["completed"] == 4 and lv["good_requests"] == 4 for lv in data["levels"])
    assert all(200 <= lv["ttft"]["median_ms"] < 400 for lv in data["levels"])  # exact timing: the other file
    cap = load_capacity(out, parse_slo(""))
    assert cap.concurrency == 4 and cap.output_tokens_per_s == data["levels"][1]["output_throughput"]

    md = runner.invoke(app, ["report", str(out), str(out), "--markdown"])
    assert md.exit_code == 0 and md.output.count("| timed | Q4_1 | test box |") == 4


def test_plot_and_failures(scripted_url, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    ok = runner.invoke(app, ["--url", scripted_url, "--requests", "2", "--output-len", "4", "--warmup", "0",
                             "--plot", str(png), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    failed = runner.invoke(app, ["--url", scripted_url, "--model", "http500", "--requests", "2",
                                 "--warmup", "0", "--json", "-", "--no-progress"])
    assert failed.exit_code == 1
    assert '"http_500": 2' in failed.output


def test_unreachable_endpoint_is_a_clear_error():
    result = runner.invoke(app, ["--url", "http://127.0.0.1:9/v1", "--no-progress"])
    assert result.exit_code == 2 and "pass --model" in result.output
