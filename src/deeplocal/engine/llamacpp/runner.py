"""Run one scheduled step on the llama context: fill the batch, decode once."""

from __future__ import annotations

import llama_cpp as lc

from deeplocal.engine.llamacpp.scheduler import ScheduledChunk


class BatchRunner:
    def __init__(self, ctx, *, capacity: int):
        self._ctx = ctx
        self._capacity = capacity
        self._batch = lc.llama_batch_init(capacity, 0, 1)

    def run(self, plan: list[ScheduledChunk]) -> tuple[int, dict[int, int]]:
        """Decode the plan. Returns (llama_decode status, id(seq) -> batch index of its logits)."""
        batch = self._batch
        n = 0
        logits_at: dict[int, int] = {}
        # Ascending seq ids: with per-sequence KV streams llama.cpp puts only consecutive ids in one
        # micro-batch, so an unsorted batch would be split into many small graphs.
        for chunk in sorted(plan, key=lambda c: c.seq.slot):
            seq = chunk.seq
            last = len(chunk.tokens) - 1
            for j, token in enumerate(chunk.tokens):
                batch.token[n] = token
                batch.pos[n] = seq.n_cached + j
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq.slot
                wants = chunk.wants_logits and j == last
                batch.logits[n] = 1 if wants else 0
                if wants:
                    logits_at[id(seq)] = n
                n += 1
        batch.n_tokens = n
        return lc.llama_decode(self._ctx, batch), logits_at

    def close(self) -> None:
        if self._batch is not None:
            lc.llama_batch_free(self._batch)
            self._batch = None
