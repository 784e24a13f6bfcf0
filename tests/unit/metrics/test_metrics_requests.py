"""Request metrics: vLLM meanings of TTFT/ITL/TPOT/E2E/queue time, counters, bounded labels, spend."""

from __future__ import annotations

import pytest

from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.registry import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(clock: Clock, **settings) -> Metrics:
    cfg = MetricsSettings(gpu=False, host_metrics=False, rapl=False, **settings)
    return Metrics(cfg, backends=dict, clock=clock,
                   prices={"deepseek-api": (0.28, 0.42), "openai/gpt-x": (2.0, 8.0)})


def test_timings_follow_vllm_meanings(kit):
    clock = Clock()
    m = make(clock)
    t = m.request_started(model="smol", upstream="local")
    clock.advance(0.5)
    t.queued_done()                  # queue time 0.5
    clock.advance(0.25)
    t.token(1)                       # TTFT 0.75
    clock.advance(0.1)
    t.token(2)                       # ITL 0.1
    clock.advance(0.3)
    t.token(1)                       # ITL 0.3
    clock.advance(0.05)
    summary = t.finish(status="200", finish_reason="stop", prompt_tokens=7, completion_tokens=5)
    s = kit.parse(m.exposition())
    lab = {"model": "smol", "upstream": "local"}
    assert kit.value(s, "deeplocal_request_queue_time_seconds_sum", **lab) == pytest.approx(0.5)
    assert kit.value(s, "deeplocal_request_time_to_first_token_seconds_sum", **lab) == pytest.approx(0.75)
    assert kit.value(s, "deeplocal_request_inter_token_latency_seconds_count", **lab) == 2
    assert kit.value(s, "deeplocal_request_inter_token_latency_seconds_sum", **lab) == pytest.approx(0.4)
    # TPOT: (last token - first token) / (completion tokens - 1) = 0.4 / 4
    assert kit.value(s, "deeplocal_request_time_per_output_token_seconds_sum", **lab) == pytest.approx(0.1)
    assert kit.value(s, "deeplocal_request_e2e_latency_seconds_sum", **lab) == pytest.approx(1.2)
    assert kit.value(s, "deeplocal_request_e2e_latency_seconds_bucket", le="1.0", **lab) == 0
    assert kit.value(s, "deeplocal_request_e2e_latency_seconds_bucket", le="2.5", **lab) == 1
    assert kit.value(s, "deeplocal_prompt_tokens_total", **lab) == 7
    assert kit.value(s, "deeplocal_generation_tokens_total", **lab) == 5
    assert kit.value(s, "deeplocal_requests_total", status="200", finish_reason="stop", **lab) == 1
    assert kit.value(s, "deeplocal_requests_in_flight", **lab) == 0
    assert summary.ttft_s == pytest.approx(0.75) and summary.tpot_s == pytest.approx(0.1)
    assert summary.queue_s == pytest.approx(0.5) and summary.e2e_s == pytest.approx(1.2)


def test_in_flight_and_idempotent_finish(kit):
    clock = Clock()
    m = make(clock)
    timers = [m.request_started(model="smol", upstream="local") for _ in range(3)]
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_requests_in_flight", model="smol") == 3
    first = timers[0].finish(status="499", finish_reason="abort", prompt_tokens=3, completion_tokens=1)
    again = timers[0].finish(status="200", finish_reason="stop", prompt_tokens=99, completion_tokens=99)
    timers[0].token(5)               # after finish: ignored
    assert again is first
    s = kit.parse(m.exposition())
    assert kit.value(s, "deeplocal_requests_in_flight", model="smol") == 2
    assert kit.value(s, "deeplocal_requests_total", status="499", finish_reason="abort") == 1
    assert kit.value(s, "deeplocal_prompt_tokens_total", model="smol") == 3
    # a cancelled (non-2xx) request counts but does not enter the latency histograms
    assert kit.total(s, "deeplocal_request_e2e_latency_seconds_count", model="smol") == 0


def test_single_token_has_no_tpot_and_error_before_tokens(kit):
    clock = Clock()
    m = make(clock)
    t = m.request_started(model="smol", upstream="local")
    clock.advance(0.2)
    t.token(1)
    t.finish(status="200", finish_reason="length", prompt_tokens=4, completion_tokens=1)
    err = m.request_started(model="smol", upstream="local")
    summary = err.finish(status="429", finish_reason=None, prompt_tokens=0, completion_tokens=0)
    s = kit.parse(m.exposition())
    assert kit.total(s, "deeplocal_request_time_per_output_token_seconds_count", model="smol") == 0
    assert kit.value(s, "deeplocal_request_time_to_first_token_seconds_count", model="smol") == 1
    assert kit.value(s, "deeplocal_requests_total", status="429", finish_reason="none") == 1
    assert summary.ttft_s is None and summary.tpot_s is None


def test_labels_are_bounded(kit):
    clock = Clock()
    m = make(clock, max_label_values=4)
    for i in range(50):
        t = m.request_started(model=f"model-{i}", upstream="local")
        t.finish(status="200 OK" if i % 2 else "200", finish_reason=f"weird-{i}", prompt_tokens=1,
                 completion_tokens=1)
    s = kit.parse(m.exposition())
    models = {dict(ls)["model"] for (n, ls) in s if n == "deeplocal_requests_total"}
    assert models == {"model-0", "model-1", "model-2", "model-3", "other"}
    statuses = {dict(ls)["status"] for (n, ls) in s if n == "deeplocal_requests_total"}
    reasons = {dict(ls)["finish_reason"] for (n, ls) in s if n == "deeplocal_requests_total"}
    assert statuses == {"200", "other"} and reasons == {"other"}
    assert kit.value(s, "deeplocal_requests_total", model="other", status="200") == 23
    assert not any("request_id" in dict(ls) or "tenant" in dict(ls) for (_, ls) in s)


def test_usage_by_tenant_and_estimated_spend(kit):
    clock = Clock()
    m = make(clock, tenant_label=True)
    t = m.request_started(model="deepseek-chat", upstream="deepseek-api")
    summary = t.finish(status="200", finish_reason="stop", prompt_tokens=1_000_000, completion_tokens=500_000,
                       tenant="acme")
    m.request_started(model="gpt-x", upstream="openai").finish(
        status="200", finish_reason="stop", prompt_tokens=1000, completion_tokens=1000, tenant="beta")
    m.request_started(model="smol", upstream="local").finish(
        status="200", finish_reason="stop", prompt_tokens=10, completion_tokens=10, tenant="acme")
    s = kit.parse(m.exposition())
    assert summary.spend_usd == pytest.approx(0.28 + 0.21)
    assert kit.value(s, "deeplocal_estimated_spend_usd_total", upstream="deepseek-api",
                     tenant="acme") == pytest.approx(0.49)
    assert kit.value(s, "deeplocal_estimated_spend_usd_total", upstream="openai",
                     tenant="beta") == pytest.approx((1000 * 2.0 + 1000 * 8.0) / 1e6)
    assert not any(n == "deeplocal_estimated_spend_usd_total" and dict(ls)["upstream"] == "local"
                   for (n, ls) in s)                   # local upstreams have no price
    assert kit.value(s, "deeplocal_usage_tokens_total", tenant="acme", model="smol", kind="completion") == 10
    assert kit.value(s, "deeplocal_usage_tokens_total", tenant="acme", model="deepseek-chat",
                     kind="prompt") == 1_000_000
