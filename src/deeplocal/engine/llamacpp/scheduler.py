"""Continuous batching: which sequences run this step, and how many tokens each feeds.

Decode tokens of running sequences come first (one each), then prefill chunks fill what is left
of `max_num_batched_tokens`, so a long prompt never stalls the streams already running. When the
KV cells run out, the newest running sequence is preempted: its KV is dropped and it waits at the
head of the queue to be recomputed (its sampler state is kept, so its output continues unchanged).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from deeplocal.engine.llamacpp.kv import KvManager, common_prefix
from deeplocal.engine.llamacpp.sequence import SeqStatus, Sequence


@dataclass(frozen=True, slots=True)
class ScheduledChunk:
    seq: Sequence
    tokens: list[int]
    wants_logits: bool   # the chunk reaches the end of the sequence: sample after decoding


class Scheduler:
    def __init__(self, kv: KvManager, *, max_num_seqs: int, max_num_batched_tokens: int):
        self.kv = kv
        self.max_num_seqs = max_num_seqs
        self.max_batched = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def drop_cancelled(self) -> list[Sequence]:
        # `cancelled` is set from the event loop's thread at any moment: read it once per sequence.
        gone = [s for s in self.running if s.cancelled] + [s for s in self.waiting if s.cancelled]
        if not gone:
            return gone
        dropped = {id(s) for s in gone}
        for seq in gone:
            if seq.slot >= 0:
                self.kv.release(seq.slot, None)
                seq.slot = -1
            seq.status = SeqStatus.FINISHED
        self.running = [s for s in self.running if id(s) not in dropped]
        self.waiting = deque(s for s in self.waiting if id(s) not in dropped)
        return gone

    def finish(self, seq: Sequence) -> None:
        """Release a finished sequence, keeping what is in its KV as a prefix-cache entry."""
        self.running.remove(seq)
        self.kv.release(seq.slot, seq.tokens[:seq.n_cached])
        seq.slot = -1

    def schedule(self) -> list[ScheduledChunk]:
        self._admit()
        plan: list[ScheduledChunk] = []
        budget = self.max_batched
        decoding = [s for s in self.running if s.uncached == 1]
        for seq in decoding:
            if budget == 0:
                break
            if not self._ensure_cells(1, protect=seq):
                continue
            if seq.status is not SeqStatus.RUNNING:   # preempted while making room
                continue
            plan.append(ScheduledChunk(seq, seq.next_tokens(1), True))
            self.kv.grow(seq.slot, seq.n_cached + 1)   # promised now; rolled back if decode fails
            budget -= 1
        for seq in [s for s in self.running if s.uncached > 1]:
            if budget == 0:
                break
            want = min(seq.uncached, budget)
            if not self._ensure_cells(want, protect=seq) or seq.status is not SeqStatus.RUNNING:
                continue
            plan.append(ScheduledChunk(seq, seq.next_tokens(want), want == seq.uncached))
            self.kv.grow(seq.slot, seq.n_cached + want)
            budget -= want
        return [c for c in plan if c.seq.status is SeqStatus.RUNNING]

    def preempt_newest(self) -> bool:
        if not self.running:
            return False
        self._preempt(max(self.running, key=lambda s: s.arrival))
        return True

    def _admit(self) -> None:
        deferred: list[Sequence] = []
        try:
            self._admit_some(deferred)
        finally:   # deferred sequences go back to the head of the queue whatever happened
            self.waiting.extendleft(reversed(deferred))

    def _admit_some(self, deferred: list[Sequence]) -> None:
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if not self.kv.can_allocate(seq.length + 1):
                break
            if self._prefix_in_flight(seq):
                deferred.append(self.waiting.popleft())
                continue
            seq.slot, reused = self.kv.allocate(seq.tokens)
            self.waiting.popleft()       # only now: a failure above leaves it queued, to be failed
            seq.n_cached = reused
            if not seq.output:
                seq.prefix_hit = reused
            seq.status = SeqStatus.RUNNING
            self.running.append(seq)
            if seq.on_admitted is not None:
                callback, seq.on_admitted = seq.on_admitted, None
                callback()

    def _prefix_in_flight(self, seq: Sequence) -> bool:
        """A running sequence is still computing a long prefix of this prompt (a burst of requests
        with one system prompt): wait a step or two and copy it instead of computing it again."""
        if not self.kv.prefix_cache or seq.output:
            return False
        cached = None
        for other in self.running:
            if other.output or other.n_cached >= len(other.prompt) - 1:
                continue                                   # its prompt is already in the KV
            shared = common_prefix(other.prompt, seq.prompt)
            if other.n_cached < shared:
                cached = self.kv.cached_prefix(seq.prompt) if cached is None else cached
                if self.kv.worth_copying(shared, cached):
                    return True
        return False

    def _ensure_cells(self, n: int, *, protect: Sequence) -> bool:
        """Make n cells free: first from the prefix cache, then by preempting newer sequences."""
        if not self.kv.can_grow(protect.slot, protect.n_cached, n):
            return False
        while not self.kv.evict_for(n):
            victims = [s for s in self.running if s is not protect and s.arrival >= protect.arrival]
            if not victims:
                return False
            self._preempt(max(victims, key=lambda s: s.arrival))
        return True

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.kv.release(seq.slot, None)
        seq.slot, seq.n_cached, seq.status = -1, 0, SeqStatus.WAITING
        self.waiting.appendleft(seq)
        self.preemptions += 1
