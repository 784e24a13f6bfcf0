"""VllmBackend against the stand-in: streaming through RemoteBackend, stats from /metrics, LoRA
adapters by name, and several replicas (CUDA_VISIBLE_DEVICES each) chosen by load."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from vllm_fakes import chat, collect

from deeplocal.engine.backend import Backend
from deeplocal.engine.errors import ModelNotFound
from deeplocal.engine.types import FinishReason
from deeplocal.engine.vllm.backend import VllmBackend

pytestmark = pytest.mark.slow


async def test_streams_a_chat_completion_with_usage(fake):
    backend = VllmBackend("tiny", "/models/tiny", fake.settings())
    assert isinstance(backend, Backend)
    await backend.start()
    try:
        text, chunks = await collect(backend, chat("one two three", max_tokens=3))
        assert text == "tiny-tok0 tiny-tok1 tiny-tok2 "
        assert len([c for c in chunks if c.text]) == 3          # streamed token by token
        last = chunks[-1]
        assert last.finish_reason is FinishReason.LENGTH
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 3)
    finally:
        await backend.stop()


async def test_stats_come_from_the_childs_metrics(fake):
    s = fake.settings(env={"FAKE_VLLM_TOKEN_DELAY": "0.05"}, max_num_seqs=4, enable_prefix_caching=True)
    backend = VllmBackend("tiny", "/models/tiny", s)
    await backend.start()
    try:
        await collect(backend, chat("a shared system prompt then question one", max_tokens=2))
        stream = backend.generate(chat("a shared system prompt then question two", max_tokens=40))
        first = await anext(stream)                                   # one request now running
        replica = backend.replicas[0]
        async with httpx.AsyncClient() as client:
            during = await replica.scrape(client)
        assert during.running == 1 and during.kv_total == 40         # 4 seqs x 10 blocks in the fake
        assert during.kv_used == 10                                   # 1 of 4 sequences: 25 %
        assert during.prefix_query_tokens == 14 and during.prefix_hit_tokens == 6
        assert first is not None
        await asyncio.sleep(0.3)                                      # the poller scrapes meanwhile
        mid = backend.stats()
        assert mid.running == 1 and 5 < mid.generation_tokens_per_s < 40   # ~20 tok/s in the fake
        async for _ in stream:
            pass
        async with httpx.AsyncClient() as client:
            await asyncio.sleep(0.2)
            after = await replica.scrape(client)
        assert after.running == 0 and after.generation_tokens_total == 42
        seen = backend.stats()                                        # what routing reads, no I/O
        assert seen.healthy and seen.generation_tokens_total == 42 and seen.prefix_hit_rate == 6 / 14
    finally:
        await backend.stop()
    assert not backend.stats().healthy


async def test_lora_adapters_are_served_by_name(fake):
    s = fake.settings(enable_lora=True, lora_adapters=[{"name": "sql", "path": "/adapters/sql"}])
    backend = VllmBackend("tiny", "/models/tiny", s)
    assert backend.capabilities.lora
    await backend.start()
    try:
        argv = fake.argv(1)
        assert argv[argv.index("--lora-modules") + 1] == "sql=/adapters/sql"
        text, _ = await collect(backend, chat(max_tokens=1, lora="sql"))
        assert text == "sql-tok0 "
        text, _ = await collect(backend, chat(max_tokens=1, model="sql"))
        assert text == "sql-tok0 "
        with pytest.raises(ModelNotFound, match="not configured"):
            await collect(backend, chat(lora="nope"))
    finally:
        await backend.stop()


async def test_replicas_get_their_own_gpus_and_share_the_load(fake):
    s = fake.settings(env={"FAKE_VLLM_TOKEN_DELAY": "0.05"}, replicas=2, gpus=(3, 5))
    backend = VllmBackend("tiny", "/models/tiny", s)
    await backend.start()
    try:
        assert sorted(fake.env(n)["CUDA_VISIBLE_DEVICES"] for n in (1, 2)) == ["3", "5"]
        ports = {fake.argv(n)[fake.argv(n).index("--port") + 1] for n in (1, 2)}
        assert len(ports) == 2
        results = await asyncio.gather(*(collect(backend, chat(max_tokens=10)) for _ in range(4)))
        assert all(text.count("tok") == 10 for text, _ in results)
        for _ in range(50):                                              # stats come from periodic scrapes
            generated = [r.stats().generation_tokens_total for r in backend.replicas]
            if sum(generated) == 40:
                break
            await asyncio.sleep(0.1)
        assert generated == [20, 20]                                     # two streams each
        assert backend.stats().generation_tokens_total == 40
    finally:
        await backend.stop()


async def test_requests_avoid_a_replica_that_is_down(fake):
    s = fake.settings(replicas=2, restart_backoff_s=5.0, restart_backoff_max_s=5.0)
    backend = VllmBackend("tiny", "/models/tiny", s)
    await backend.start()
    try:
        down, up = backend.replicas
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.HTTPError):
                await client.post(down.root_url + "/fake/crash", json={})
        for _ in range(50):
            if not down.supervisor.ready:
                break
            await asyncio.sleep(0.05)
        assert not down.supervisor.ready                                 # restarting, 5 s backoff
        for _ in range(4):
            text, _ = await collect(backend, chat(max_tokens=1))
            assert text == "tiny-tok0 "
        assert (up.completed, down.completed) == (4, 0)
        assert backend.stats().healthy                                    # one replica is enough
    finally:
        await backend.stop()


async def test_through_deeplocals_http_api_with_the_openai_client(fake):
    from openai import AsyncOpenAI
    from vllm_fakes import app_serving, serve_app

    backend = VllmBackend("tiny", "/models/tiny", fake.settings())
    async with serve_app(app_serving(backend)) as base_url:        # the app's lifespan starts vLLM
        assert backend.replicas[0].supervisor.ready
        client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
        stream = await client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True)
        pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        assert "".join(pieces) == "tiny-tok0 tiny-tok1 tiny-tok2 "
        await client.close()
    assert backend.replicas == []                                     # stopped with the app
