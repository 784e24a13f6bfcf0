"""Decode speed of llama.cpp's two KV layouts, measured in one run on the bundled model.

Unified (one pool shared by every sequence; attention reads every cell in use) against per-sequence
streams (attention reads only the sequence's own cells), for N sequences of L prompt tokens each,
timing only the decode steps. This is what `engine.kv_unified` trades.

    python bench/kv_layout.py [--seqs 8] [--prompt 500] [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import llama_cpp as lc

from deeplocal.engine.llamacpp.model import LlamaModel, new_context
from deeplocal.models.catalog import bundled_model_path


def _fill(batch, items) -> None:
    batch.n_tokens = 0
    for token, pos, seq, logits in items:
        i = batch.n_tokens
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
        batch.seq_id[i][0], batch.logits[i] = seq, int(logits)
        batch.n_tokens += 1


def decode_rate(model: LlamaModel, *, unified: bool, seqs: int, prompt: int, steps: int, threads: int,
                stale: int = 0) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s) of `seqs` sequences; `stale` cells are held by one more, idle
    sequence first (what a prefix-cache entry of a finished request leaves in the KV)."""
    per_seq = max(prompt + steps + 8, stale)
    n_seqs = seqs + (1 if stale else 0)
    n_ctx = seqs * (prompt + steps + 8) + stale if unified else n_seqs * per_seq
    ctx = new_context(model, n_ctx=n_ctx, n_batch=512, n_seq_max=n_seqs, n_threads=threads, unified=unified)
    batch = lc.llama_batch_init(512, 0, 1)
    try:
        for start in range(0, stale, 512):         # the idle sequence, id `seqs`, not timed
            _fill(batch, [(300 + j % 500, j, seqs, False) for j in range(start, min(stale, start + 512))])
            assert lc.llama_decode(ctx, batch) == 0
        t0 = time.perf_counter()
        for s in range(seqs):                      # prefill, one sequence after the other
            for start in range(0, prompt, 512):
                _fill(batch, [(100 + (j * 7 + s) % 1000, j, s, False) for j in range(start, min(prompt, start + 512))])
                assert lc.llama_decode(ctx, batch) == 0
        prefill = seqs * prompt / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for step in range(steps):
            _fill(batch, [(200 + s, prompt + step, s, True) for s in range(seqs)])
            assert lc.llama_decode(ctx, batch) == 0
        return prefill, seqs * steps / (time.perf_counter() - t0)
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seqs", type=int, default=8)
    p.add_argument("--prompt", type=int, default=500)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--stale", type=int, default=0,
                   help="cells held by one idle sequence, as a prefix-cache entry leaves them")
    args = p.parse_args()
    model = LlamaModel(bundled_model_path())
    try:
        kw = {"seqs": args.seqs, "prompt": args.prompt, "steps": args.steps, "threads": args.threads,
              "stale": args.stale}
        unified = decode_rate(model, unified=True, **kw)
        per_seq = decode_rate(model, unified=False, **kw)
    finally:
        model.close()
    print(f"{args.seqs} sequences x {args.prompt} tokens, {args.stale} stale cells, {args.threads} threads")
    print(f"  unified      prefill {unified[0]:8.1f} tok/s, decode {unified[1]:8.1f} tok/s")
    print(f"  per-sequence prefill {per_seq[0]:8.1f} tok/s, decode {per_seq[1]:8.1f} tok/s   "
          f"decode ratio per-sequence / unified = {per_seq[1] / unified[1]:.2f}x")

if __name__ == "__main__":
    main()
