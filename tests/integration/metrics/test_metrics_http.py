"""GET /metrics over real HTTP while real streams run through a small FastAPI app that uses RequestTimer."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from deeplocal.engine.types import BackendStats
from deeplocal.metrics.config import MetricsSettings
from deeplocal.metrics.http import make_metrics_router, start_metrics_server
from deeplocal.metrics.registry import Metrics


class Ask(BaseModel):
    model: str = "smol"
    tokens: int = 8
    gap_s: float = 0.005
    prompt_tokens: int = 11


class Engine:
    """A stand-in engine with real queueing: `slots` sequences decode at once, the rest wait."""

    def __init__(self, slots: int):
        self.slots = asyncio.Semaphore(slots)
        self.waiting = 0
        self.running = 0

    def stats(self) -> BackendStats:
        return BackendStats(waiting=self.waiting, running=self.running, kv_used=self.running, kv_total=16)


def require_admin(x_admin: str | None = Header(None)) -> None:
    if x_admin != "yes":
        raise HTTPException(status_code=401, detail="admin scope required")


def build_app(metrics: Metrics, engine: Engine, *, guarded: bool = False) -> FastAPI:
    app = FastAPI()
    deps = [Depends(require_admin)] if guarded else []
    app.include_router(make_metrics_router(metrics, dependencies=deps))

    @app.post("/v1/stream")
    async def stream(ask: Ask) -> StreamingResponse:
        timer = metrics.request_started(model=ask.model, upstream="local")

        async def body():
            status, reason, sent = "200", None, 0
            engine.waiting += 1
            try:
                async with engine.slots:
                    engine.waiting -= 1
                    engine.running += 1
                    timer.queued_done()
                    try:
                        for _ in range(ask.tokens):
                            await asyncio.sleep(ask.gap_s)
                            sent += 1
                            timer.token(1)
                            yield f"data: {json.dumps({'text': 'x'})}\n\n"
                    finally:
                        engine.running -= 1
                reason = "length"
                usage = {"prompt_tokens": ask.prompt_tokens, "completion_tokens": sent}
                yield f"data: {json.dumps({'usage': usage, 'finish_reason': reason})}\n\n"
            except asyncio.CancelledError:
                status, reason = "499", "abort"
                raise
            finally:
                timer.finish(status=status, finish_reason=reason, prompt_tokens=ask.prompt_tokens,
                             completion_tokens=sent)

        return StreamingResponse(body(), media_type="text/event-stream")

    return app


def new_metrics(engine: Engine) -> Metrics:
    return Metrics(MetricsSettings(rapl=False), backends=lambda: {"local": engine})


async def run_stream(client: httpx.AsyncClient, base: str, ask: dict) -> dict:
    usage = {}
    async with client.stream("POST", f"{base}/v1/stream", json=ask) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("data: ") and "usage" in line:
                usage = json.loads(line[6:])["usage"]
    return usage


async def test_exposition_matches_what_clients_got(kit):
    engine = Engine(slots=2)
    metrics = new_metrics(engine)
    with kit.serve(build_app(metrics, engine)) as base:
        async with httpx.AsyncClient(timeout=30) as client:
            asks = [{"tokens": 3 + i % 5, "prompt_tokens": 10 + i} for i in range(9)]
            usages = await asyncio.gather(*(run_stream(client, base, a) for a in asks))
            resp = await client.get(f"{base}/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    s = kit.parse(resp.text)
    n = len(asks)
    for hist in ("time_to_first_token", "e2e_latency", "queue_time", "time_per_output_token"):
        assert kit.total(s, f"deeplocal_request_{hist}_seconds_count", model="smol") == n, hist
    itl = sum(u["completion_tokens"] - 1 for u in usages)
    assert kit.total(s, "deeplocal_request_inter_token_latency_seconds_count") == itl
    assert kit.total(s, "deeplocal_prompt_tokens_total") == sum(u["prompt_tokens"] for u in usages)
    assert kit.total(s, "deeplocal_generation_tokens_total") == sum(u["completion_tokens"] for u in usages)
    assert kit.total(s, "deeplocal_requests_total", status="200", finish_reason="length") == n
    assert kit.total(s, "deeplocal_requests_in_flight") == 0
    # 9 requests through 2 slots: some waited, so queue time exceeds zero
    assert kit.total(s, "deeplocal_request_queue_time_seconds_sum") > 0
    assert kit.total(s, "deeplocal_engine_up", upstream="local") == 1
    assert kit.total(s, "deeplocal_gpu_available") in (0, 1)
    labels = {k for (_, ls) in s for k, _ in ls}
    assert not labels & {"request_id", "principal_id", "key_id", "tenant"}
    metrics.close()


async def test_cancelled_stream_is_finished_once(kit):
    engine = Engine(slots=4)
    metrics = new_metrics(engine)
    with kit.serve(build_app(metrics, engine)) as base:
        async with httpx.AsyncClient(timeout=30) as client:
            async with client.stream("POST", f"{base}/v1/stream", json={"tokens": 500, "gap_s": 0.01}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        break                          # hang up after the first token
            deadline = time.monotonic() + 10
            while True:
                s = kit.parse((await client.get(f"{base}/metrics")).text)
                if kit.total(s, "deeplocal_requests_total") == 1 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
    assert kit.total(s, "deeplocal_requests_total", status="499", finish_reason="abort") == 1
    assert kit.total(s, "deeplocal_requests_in_flight") == 0
    assert kit.total(s, "deeplocal_request_e2e_latency_seconds_count") == 0
    assert kit.total(s, "deeplocal_request_time_to_first_token_seconds_count") == 1


async def test_scrape_under_50ms_while_16_streams_run(kit):
    engine = Engine(slots=16)
    metrics = new_metrics(engine)
    with kit.serve(build_app(metrics, engine)) as base:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as client:
            await client.get(f"{base}/metrics")        # warm: NVML probe, first-scrape discovery
            streams = [asyncio.create_task(run_stream(client, base, {"tokens": 150, "gap_s": 0.02}))
                       for _ in range(16)]
            while engine.running < 16:
                await asyncio.sleep(0.01)
            times, running = [], []
            for _ in range(15):
                t0 = time.perf_counter()
                resp = await client.get(f"{base}/metrics")
                times.append(time.perf_counter() - t0)
                running.append(kit.total(kit.parse(resp.text), "deeplocal_requests_in_flight"))
                await asyncio.sleep(0.05)
            await asyncio.gather(*streams)
    print(f"scrape with 16 streams: median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms, n={len(times)}")
    assert min(running) == 16                          # every scrape really happened under load
    assert statistics.median(times) < 0.050


async def test_admin_hook_and_separate_port(kit):
    engine = Engine(slots=1)
    metrics = new_metrics(engine)
    metrics.request_started(model="smol", upstream="local").finish(
        status="200", finish_reason="stop", prompt_tokens=2, completion_tokens=1)
    side = start_metrics_server(metrics, "127.0.0.1", 0)
    try:
        with kit.serve(build_app(metrics, engine, guarded=True)) as base:
            async with httpx.AsyncClient(timeout=30) as client:
                assert (await client.get(f"{base}/metrics")).status_code == 401
                ok = await client.get(f"{base}/metrics", headers={"x-admin": "yes"})
                other = await client.get(side.url)
    finally:
        side.close()
    assert ok.status_code == 200 and other.status_code == 200
    for text in (ok.text, other.text):
        assert kit.total(kit.parse(text), "deeplocal_requests_total", model="smol") == 1
    metrics.close()
