"""`deeplocal cost` end to end through typer: the example, JSON, bench capacity, plot, prices, live."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deeplocal.cli.cost import app

runner = CliRunner()


def test_example_prints_the_worked_example():
    result = runner.invoke(app, ["--example", "--no-sensitivity"])
    assert result.exit_code == 0, result.output
    assert "Cloud: $87,600 API fees + $24,000 operations = $111,600 per year" in result.output
    assert "Local year 1: $48,000 hardware + $36,000 development = $84,000" in result.output
    assert "Local year 2: $12,000 maintenance + $18,000 operations = $30,000" in result.output
    assert "Break-even: month 8" in result.output


def test_json_from_bench_capacity(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"schema": "deeplocal.bench/1", "metadata": {}, "levels": [
        {"concurrency": 4, "completed": 8, "failed": 0, "output_throughput": 100.0,
         "ttft": {"p90_ms": 300.0}, "tpot": {"p90_ms": 30.0}}]}))
    out = tmp_path / "cost.json"
    result = runner.invoke(app, [
        "--requests-per-day", "17280", "--prompt-tokens", "500", "--completion-tokens", "1000",
        "--peak-to-average", "1", "--price", "deepseek-chat", "--price-date", "2025-03-01",
        "--hardware-capex", "10000", "--power-watts", "500", "--pue", "1.2", "--electricity", "0.2",
        "--bench", str(bench), "--slo", "ttft=500ms,tpot=50ms", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    # 17,280 x 1,000 / 86,400 = 200 tok/s over 100 tok/s per replica -> 2 replicas, fully utilised.
    assert data["replicas"] == 2 and data["utilisation"] == pytest.approx(1.0)
    assert data["years"][0]["cloud_api"] == pytest.approx(17_280 * (500 * 0.27 + 1_000 * 1.10) / 1e6 * 365)
    assert data["years"][0]["local_power"] == pytest.approx(2 * 0.5 * 8_760 * 1.2 * 0.2)
    assert data["inputs"]["cloud"]["price"]["since"] == "2025-02-08"


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "c.png"
    result = runner.invoke(app, ["--example", "--plot", str(png), "--no-sensitivity"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prices_and_bad_inputs(tmp_path):
    listed = runner.invoke(app, ["prices", "--all", "--json"])
    assert listed.exit_code == 0
    assert any(p["name"] == "deepseek-reasoner" and p["output"] == 2.19 for p in json.loads(listed.output))
    assert runner.invoke(app, ["--price", "nope"]).exit_code == 2
    assert "no usage ledger" in runner.invoke(app, ["--live", "--database-url",
                                                    f"sqlite:///{tmp_path / 'x.db'}"]).output


def test_live_reads_a_real_ledger(tmp_path):
    ledger = pytest.importorskip("deeplocal.gateway.ledger")
    import time

    from deeplocal.store.db import make_engine, write_transaction
    from deeplocal.store.migrations import migrate

    url = f"sqlite:///{tmp_path / 'deeplocal.db'}"
    engine = make_engine(url)
    migrate(engine)
    with write_transaction(engine) as conn:
        for upstream, model in (("deepseek", "deepseek-chat"), ("local", "smollm2-135m-instruct")):
            ledger.append(conn, ledger.UsageRecord(ts=time.time(), key_id="k", tenant="t", model=model,
                                                   upstream=upstream, prompt_tokens=1_000_000,
                                                   completion_tokens=1_000_000, status="ok"))
    engine.dispose()
    out = tmp_path / "live.json"
    result = runner.invoke(app, ["--live", "--database-url", url, "--price", "gpt-4o-mini", "--capacity", "100",
                                 "--hardware-capex", "1000", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    remote, local = data["lines"]
    assert remote["spent"] == pytest.approx(0.28 + 0.42) and local["spent"] == 0
    assert remote["as_cloud"] == pytest.approx(0.15 + 0.60) and local["as_local"] > 0
