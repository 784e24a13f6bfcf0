"""deploy/grafana/deeplocal.json and deploy/prometheus/alerts.yml name only metrics we export, and parse."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from deeplocal.engine.types import BackendStats
from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.registry import Metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "deeplocal.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
NAME = re.compile(r"\bdeeplocal[a-zA-Z0-9_:]*")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool absent (apt-get install prometheus)")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], check=False, capture_output=True, text=True, timeout=60)


class Engine:
    def stats(self) -> BackendStats:
        return BackendStats(waiting=1, running=2, kv_used=5, kv_total=10)


@pytest.fixture
def exported(tmp_path, kit) -> set[str]:
    """Every sample name a fully equipped deeplocal exports (fake NVML, fake RAPL tree, priced upstream)."""
    rapl = tmp_path / "powercap" / "intel-rapl:0"
    rapl.mkdir(parents=True)
    (rapl / "name").write_text("package-0")
    (rapl / "max_energy_range_uj").write_text("262143328850")
    (rapl / "energy_uj").write_text("1000")
    nvml = kit.FakeNvml([kit.fake_gpu(0), kit.fake_gpu(1, pcie_tx_total=None, pcie_rx_total=None)])
    m = Metrics(MetricsSettings(rapl_root=rapl.parent), backends=lambda: {"local": Engine()}, nvml=nvml,
                breakers=lambda: {"remote": "closed"}, prices={"remote": (1.0, 2.0)})
    m.exposition()
    nvml.xid(0, 79)
    t = m.request_started(model="smol", upstream="remote")
    t.queued_done()
    t.token(1)
    t.token(1)
    t.finish(status="200", finish_reason="stop", prompt_tokens=3, completion_tokens=2)
    names = {name for name, _ in kit.parse(m.exposition())}
    m.close()
    return names


def dashboard_exprs() -> list[tuple[str, str]]:
    data = json.loads(DASHBOARD.read_text())
    out = []
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        out += [(panel["title"], t["expr"]) for t in panel["targets"]]
    return out


def recorded_names() -> set[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def test_dashboard_queries_name_exported_metrics(exported):
    exprs = dashboard_exprs()
    assert len(exprs) >= 30
    for title, expr in exprs:
        names = set(NAME.findall(expr))
        assert names, f"{title}: {expr} names no deeplocal metric"
        assert names <= exported, f"{title}: not exported: {sorted(names - exported)}"
    titles = " | ".join(t.lower() for t, _ in exprs)
    for topic in ("time to first token (p50 / p90 / p99)", "time per output token", "inter-token latency",
                  "end-to-end latency", "queue time", "tokens / s", "kv cache usage", "temperature",
                  "power", "memory used", "pcie", "xid"):
        assert topic in titles, topic


def test_alert_rules_name_exported_metrics(exported):
    rules = yaml.safe_load(ALERTS.read_text())
    allowed = exported | recorded_names()
    alerts = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            names = set(NAME.findall(rule["expr"]))
            assert names and names <= allowed, f"{rule.get('alert') or rule['record']}: {names - allowed}"
            if "alert" in rule:
                alerts[rule["alert"]] = rule
                assert rule["labels"]["severity"] in {"info", "warning", "critical"}
                assert rule["annotations"]["summary"]
    for needed in ("GpuTemperatureHigh", "GpuMemoryNearFull", "GpuXidError", "GpuThermalThrottling",
                   "TtftSloFastBurn", "HighErrorRate", "QueueGrowing", "UpstreamBreakerOpen"):
        assert f"Deeplocal{needed}" in alerts


@needs_promtool
def test_promtool_checks_rules_and_dashboard_promql(tmp_path):
    started = time.perf_counter()
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    # Dashboard queries as recording rules, Grafana variables substituted, so promtool parses the PromQL.
    subst = {"$__rate_interval": "5m", "$model": ".*", "$instance": ".*"}
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs()):
        for key, value in subst.items():
            expr = expr.replace(key, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.perf_counter() - started < 30


def _rules_without_annotations(tmp_path: Path) -> Path:
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    return path


GPU = 'instance="a",index="0",uuid="u0",name="H200"'
GPU_LABELS = {"instance": "a", "index": "0", "uuid": "u0", "name": "H200"}
REQ = 'model="m",upstream="local"'
TTFT = "deeplocal_request_time_to_first_token_seconds"


@needs_promtool
def test_alerts_fire_on_synthetic_series(tmp_path):
    """promtool's rule unit tests: each alert fires on the series that should trip it, and not before."""
    cases = [
        ([(f"deeplocal_gpu_temperature_celsius{{{GPU}}}", "70 90x15")], "DeeplocalGpuTemperatureHigh",
         [("3m", []), ("8m", [{"severity": "warning", **GPU_LABELS}])]),
        ([(f"deeplocal_gpu_xid_errors_total{{{GPU}}}", "0 0 0 1 1 1")], "DeeplocalGpuXidError",
         [("2m", []), ("4m", [{"severity": "critical", **GPU_LABELS}])]),
        ([(f"deeplocal_gpu_memory_used_bytes{{{GPU}}}", "99x20"),
          (f"deeplocal_gpu_memory_free_bytes{{{GPU}}}", "1x20")], "DeeplocalGpuMemoryNearFull",
         [("5m", []), ("15m", [{"severity": "warning", **GPU_LABELS}])]),
        ([(f'deeplocal_gpu_throttled{{{GPU},reason="thermal"}}', "1x20")], "DeeplocalGpuThermalThrottling",
         [("12m", [{"severity": "warning", "reason": "thermal", **GPU_LABELS}])]),
        ([(f'deeplocal_requests_total{{{REQ},status="200",finish_reason="stop"}}', "0+10x20"),
          (f'deeplocal_requests_total{{{REQ},status="503",finish_reason="none"}}', "0+2x20")],
         "DeeplocalHighErrorRate",
         [("15m", [{"severity": "critical", "model": "m", "upstream": "local"}])]),
        ([(f'{TTFT}_bucket{{{REQ},le="2.5"}}', "0+1x90"), (f"{TTFT}_count{{{REQ}}}", "0+10x90")],
         "DeeplocalTtftSloFastBurn", [("80m", [{"severity": "critical", "model": "m"}])]),
        ([(f'{TTFT}_bucket{{{REQ},le="2.5"}}', "0+10x90"), (f"{TTFT}_count{{{REQ}}}", "0+10x90")],
         "DeeplocalTtftSloFastBurn", [("80m", [])]),
        ([('deeplocal_engine_requests_waiting{instance="a",upstream="local"}', "0+1x40")],
         "DeeplocalQueueGrowing",
         [("30m", [{"severity": "warning", "instance": "a", "upstream": "local"}])]),
        ([('deeplocal_upstream_breaker_state{instance="a",upstream="ds",state="open"}', "0 1x5")],
         "DeeplocalUpstreamBreakerOpen",
         [("3m", [{"severity": "warning", "instance": "a", "upstream": "ds", "state": "open"}])]),
    ]
    tests = []
    for series, alert, evals in cases:
        tests.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [
                {"eval_time": t, "alertname": alert, "exp_alerts": [{"exp_labels": labels} for labels in exp]}
                for t, exp in evals],
        })
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(_rules_without_annotations(tmp_path))],
                                    "evaluation_interval": "1m", "tests": tests}))
    result = promtool("test", "rules", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr
