"""Continuous batching on the real bundled model: equality with solo runs, cancellation, preemption,
prefix reuse and back-pressure."""

from __future__ import annotations

import asyncio
import threading

import pytest

from deeplocal.config import EngineSettings
from deeplocal.engine.errors import Overloaded
from deeplocal.engine.llamacpp.backend import LlamaCppBackend
from deeplocal.engine.types import GenerationRequest, Message, SamplingParams
from deeplocal.models.catalog import bundled_model_path

QUESTIONS = ["What is the capital of France?", "Count to five.", "Name three colors.", "What is 2+2?",
             "Describe a cat.", "Why is the sky blue?", "Give me a fruit.", "Say hello in Spanish."]


def _req(q: str, max_tokens: int = 32, **kw) -> GenerationRequest:
    return GenerationRequest(request_id=q, model="m", messages=(Message("user", q),),
                             sampling=SamplingParams(temperature=0, max_tokens=max_tokens, **kw))


async def _run(backend, req) -> str:
    return "".join([c.text async for c in backend.generate(req)])


async def _run_last(backend, req):
    return [c async for c in backend.generate(req)][-1]


@pytest.fixture
async def backend_factory():
    made = []

    async def make(**kw) -> LlamaCppBackend:
        settings = EngineSettings(n_threads=1, **kw)
        b = LlamaCppBackend("m", bundled_model_path(), settings)
        await b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        await b.stop()


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


async def test_concurrent_greedy_agrees_with_solo(backend_factory):
    """Bit-equality is impossible: ggml picks matmul kernels by batch size, so logits move by up to
    ~0.8 and near-ties flip (see test_batch_isolation_is_exact for why this is not leakage).
    We measure agreement and require most outputs to match."""
    b = await backend_factory(max_num_seqs=8)
    solo = [await _run(b, _req(q, 48)) for q in QUESTIONS]
    batched = await asyncio.gather(*(_run(b, _req(q, 48)) for q in QUESTIONS))
    identical = sum(a == c for a, c in zip(solo, batched))
    prefix = sum(_common(a, c) / max(1, len(a)) for a, c in zip(solo, batched)) / len(solo)
    print(f"identical {identical}/{len(solo)}, mean common prefix {prefix:.0%}")
    assert all(batched)
    assert identical >= len(solo) // 2 and prefix >= 0.6


def _last_logits(model, sequences):
    import llama_cpp as lc
    import numpy as np

    from deeplocal.engine.llamacpp.model import new_context

    ctx = new_context(model, n_ctx=1024, n_batch=512, n_seq_max=4, n_threads=1)
    batch = lc.llama_batch_init(512, 0, 1)
    n, ends = 0, []
    for s, toks in enumerate(sequences):
        for j, tok in enumerate(toks):
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = tok, j, 1
            batch.seq_id[n][0], batch.logits[n] = s, int(j == len(toks) - 1)
            if j == len(toks) - 1:
                ends.append(n)
            n += 1
    batch.n_tokens = n
    assert lc.llama_decode(ctx, batch) == 0
    out = [np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, i), shape=(model.n_vocab,)).copy() for i in ends]
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
    return out


def test_batch_isolation_is_exact():
    """A sequence's logits do not depend on what its batch neighbours say: no KV leakage."""
    from deeplocal.engine.llamacpp.model import LlamaModel

    model = LlamaModel(bundled_model_path())
    try:
        a = model.tokenize("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n", add_special=False)
        b = model.tokenize("<|im_start|>user\nWhy is the sky blue? Please explain.<|im_end|>\n",
                           add_special=False)
        pad = [model.bos_id] * len(b)
        with_b = _last_logits(model, [a, b])[0]
        with_pad = _last_logits(model, [a, pad])[0]
        assert (with_b == with_pad).all()
    finally:
        model.close()


async def test_cancel_half_others_finish_kv_returns_to_zero(backend_factory):
    b = await backend_factory(max_num_seqs=8, prefix_cache=False)

    async def cancel_after(q, n):
        agen = b.generate(_req(q, 200, ignore_eos=True))
        got = 0
        async for _ in agen:
            got += 1
            if got >= n:
                break
        await agen.aclose()

    results = await asyncio.gather(*(cancel_after(q, 3) for q in QUESTIONS[:4]),
                                   *(_run_last(b, _req(q, 24, ignore_eos=True)) for q in QUESTIONS[4:]))
    assert all(r.finish_reason.value == "length" and r.usage.completion_tokens == 24 for r in results[4:])
    for _ in range(250):
        s = b.stats()
        if s.running == 0 and s.kv_used == 0 and s.waiting == 0:
            break
        await asyncio.sleep(0.02)
    assert s.running == 0 and s.kv_used == 0 and s.waiting == 0


async def test_preemption_keeps_every_request(backend_factory):
    # 6 sequences that each grow to ~150 tokens cannot all fit in 512 shared cells at once.
    b = await backend_factory(max_num_seqs=6, n_ctx=512, prefix_cache=False, kv_unified=True)
    reqs = [_req(q, 110, ignore_eos=True) for q in QUESTIONS[:6]]
    last = await asyncio.gather(*(_run_last(b, r) for r in reqs))
    stats = b.stats()
    assert stats.preemptions > 0
    assert all(r.usage.completion_tokens == 110 and r.finish_reason.value == "length" for r in last)
    assert stats.running == 0 and stats.kv_used == 0


@pytest.mark.parametrize("unified", [False, True])
async def test_prefix_cache_hit(backend_factory, unified):
    b = await backend_factory(kv_unified=unified)
    system = "You are a careful assistant. " * 30
    first = GenerationRequest(request_id="a", model="m", sampling=SamplingParams(temperature=0, max_tokens=4),
                              messages=(Message("system", system), Message("user", "Hi")))
    await _run(b, first)
    before = b.stats().prefix_hit_tokens
    second = GenerationRequest(request_id="b", model="m", sampling=SamplingParams(temperature=0, max_tokens=4),
                               messages=(Message("system", system), Message("user", "Hello there")))
    last = [c async for c in b.generate(second)][-1]
    assert b.stats().prefix_hit_tokens - before > 150
    assert last.usage.cached_tokens > 150


async def test_queue_limit_overloaded_then_serves(backend_factory):
    b = await backend_factory(max_num_seqs=1, max_queue=2)
    tasks = [asyncio.create_task(_run(b, _req(q, 40))) for q in QUESTIONS]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    rejected = [r for r in results if isinstance(r, Overloaded)]
    served = [r for r in results if isinstance(r, str)]
    assert rejected and served
    assert all(r.retry_after and r.status_code == 429 for r in rejected)
    assert await _run(b, _req("Hi", 4))


async def test_per_sequence_kv_layout(backend_factory):
    """kv_unified=false: each sequence owns n_ctx / max_num_seqs cells; prefixes reused in place."""
    from deeplocal.engine.errors import ContextTooLong

    b = await backend_factory(max_num_seqs=4, n_ctx=2048, kv_unified=False)
    assert b.n_ctx == 512
    outs = await asyncio.gather(*(_run_last(b, _req(q, 24, ignore_eos=True)) for q in QUESTIONS))
    assert all(o.usage.completion_tokens == 24 for o in outs)
    system = "You are a careful assistant. " * 30
    reqs = [GenerationRequest(request_id=x, model="m", sampling=SamplingParams(temperature=0, max_tokens=4),
                              messages=(Message("system", system), Message("user", x))) for x in ("Hi", "Hello")]
    await _run(b, reqs[0])
    last = await _run_last(b, reqs[1])
    assert last.usage.cached_tokens > 150
    with pytest.raises(ContextTooLong):
        await _run(b, _req("word " * 600, 8))
    s = b.stats()
    assert s.running == 0 and s.kv_used == 0


async def test_per_sequence_slots_stay_contiguous(backend_factory):
    """With per-sequence streams llama.cpp decodes only runs of consecutive seq ids in one graph:
    a new sequence fills the gap a finished one left, even when a free slot exists further on."""
    b = await backend_factory(max_num_seqs=8, n_ctx=4096)
    kv = b.engine.kv
    long_a = asyncio.create_task(_run(b, _req("Tell me a story.", 60, ignore_eos=True)))
    short = asyncio.create_task(_run(b, _req("Say hi.", 2, ignore_eos=True)))
    long_c = asyncio.create_task(_run(b, _req("Count to ten.", 60, ignore_eos=True)))
    await short                                   # its slot now holds a cache entry between two runners
    gap = [s for s in range(3) if s not in kv._held]
    assert len(kv._held) == 2 and len(gap) == 1
    fill = asyncio.create_task(_run(b, _req("List some animals.", 20, ignore_eos=True)))
    for _ in range(500):
        if len(kv._held) == 3:
            break
        await asyncio.sleep(0.01)
    assert sorted(kv._held) == [0, 1, 2]
    await asyncio.gather(long_a, long_c, fill)


@pytest.mark.parametrize("unified", [False, True])
async def test_prefix_shared_with_a_running_sequence(backend_factory, unified):
    """Concurrent requests with one long system prompt: the later ones reuse the KV of the one
    still running (a cell share in the unified pool, a stream copy with per-sequence streams),
    and produce what they produce without the reuse."""
    b = await backend_factory(kv_unified=unified, prefix_cache=True)
    system = "You are a careful assistant who answers in one short sentence. " * 12

    def req(rid: str, user: str, n: int) -> GenerationRequest:
        return GenerationRequest(request_id=rid, model="m", messages=(Message("system", system), Message("user", user)),
                                 sampling=SamplingParams(temperature=0, max_tokens=n, ignore_eos=True))

    first = asyncio.create_task(_run_last(b, req("a", "Tell me a story.", 60)))
    while b.stats().running == 0 or b.engine.kv.used_by_running < 150:
        await asyncio.sleep(0.01)
    hits = b.stats().prefix_hit_tokens
    second = await _run(b, req("b", "What is 2+2?", 12))
    assert (await first).usage.completion_tokens == 60
    assert b.stats().prefix_hit_tokens - hits > 150
    # A broken copy would derail the answer from its first token; batching alone may flip a late
    # near-tie (see test_concurrent_greedy_agrees_with_solo), so half the text must agree.
    fresh = await backend_factory(kv_unified=unified, prefix_cache=False)
    alone = await _run(fresh, req("c", "What is 2+2?", 12))
    assert _common(second, alone) >= len(alone) // 2, (second, alone)


@pytest.mark.parametrize("unified", [False, True])
async def test_burst_with_one_system_prompt_computes_it_once(backend_factory, unified):
    """Requests that arrive together with one long system prompt: the first computes it, the others
    wait for it and copy it instead of computing it again."""
    b = await backend_factory(kv_unified=unified, max_num_seqs=8)
    system = "You are a careful assistant who answers in one short sentence. " * 12
    reqs = [GenerationRequest(request_id=q, model="m", messages=(Message("system", system), Message("user", q)),
                              sampling=SamplingParams(temperature=0, max_tokens=4)) for q in QUESTIONS[:4]]
    gate = threading.Event()
    b.engine.run_job(lambda: gate.wait(30))          # hold the engine so all four arrive together
    tasks = [asyncio.create_task(_run_last(b, r)) for r in reqs]
    while b.stats().waiting < len(reqs):
        await asyncio.sleep(0.01)
    gate.set()
    last = await asyncio.gather(*tasks)
    reused = sorted(x.usage.cached_tokens for x in last)
    assert reused[0] == 0 and all(n > 150 for n in reused[1:]), reused


def test_short_cached_prefix_does_not_split_the_running_slots():
    """Per-sequence streams: a cache hit on a few shared tokens (the chat template) is dropped when
    taking that slot would split the running slots into more runs; a long hit is kept."""
    import llama_cpp as lc

    from deeplocal.engine.llamacpp.kv import KvManager
    from deeplocal.engine.llamacpp.model import LlamaModel, new_context

    model = LlamaModel(bundled_model_path())
    ctx = new_context(model, n_ctx=4 * 512, n_batch=512, n_seq_max=4, n_threads=1, unified=False)
    try:
        kv = KvManager(ctx, n_cells=4 * 512, n_slots=4, prefix_cache=True, per_slot=512)
        prompts = [[1, 2, 3] + [10 + i] * 100 for i in range(4)]
        for i, p in enumerate(prompts):
            assert kv.allocate(p) == (i, 0)
            kv.grow(i, len(p))
        kv.release(0, prompts[0])
        kv.release(2, prompts[2])                     # running: 1 and 3; cached: 0 and 2
        slot, reused = kv.allocate([1, 2, 3, 99, 98])  # shares 3 tokens with slot 0's entry
        assert (slot, reused) == (2, 0)               # slot 2 joins 1 and 3 into one run
        kv.grow(2, 5)
        slot, reused = kv.allocate(prompts[0][:80] + [7])   # 80 tokens of slot 0's entry: worth it
        assert (slot, reused) == (0, 80)
    finally:
        lc.llama_free(ctx)
        model.close()
