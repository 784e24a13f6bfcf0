"""The engine thread: owns the llama context and runs step() = schedule, decode, sample."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import llama_cpp as lc

from deeplocal.engine.errors import BackendUnavailable, Overloaded
from deeplocal.engine.llamacpp.kv import KvManager
from deeplocal.engine.llamacpp.model import LlamaModel, new_context
from deeplocal.engine.llamacpp.outbox import Outbox
from deeplocal.engine.llamacpp.runner import BatchRunner
from deeplocal.engine.llamacpp.sampler import SamplerChain, token_logprobs
from deeplocal.engine.llamacpp.scheduler import Scheduler
from deeplocal.engine.llamacpp.sequence import Sequence
from deeplocal.engine.types import BackendStats, FinishReason

log = logging.getLogger("deeplocal.engine.llamacpp")

RATE_WINDOW_S = 10.0


class LlamaEngine:
    def __init__(self, model: LlamaModel, *, n_ctx: int, n_threads: int, max_num_seqs: int,
                 max_num_batched_tokens: int, max_queue: int, prefix_cache: bool = True,
                 kv_unified: bool = False):
        self.model = model
        self.max_queue = max_queue
        # Unified: all sequences share the cells (flexible, prefixes shared across sequences).
        # Per-sequence: each slot owns n_ctx / max_num_seqs cells, like llama-server's --parallel.
        n_slots = min(256, max_num_seqs + max(4, max_num_seqs // 2)) if kv_unified else max_num_seqs
        if not kv_unified:   # a stream longer than the model's trained context is memory for nothing
            n_ctx = min(n_ctx, n_slots * max(model.info.n_ctx_train, 64))
        self._ctx = new_context(model, n_ctx=n_ctx, n_batch=max_num_batched_tokens,
                                n_seq_max=n_slots, n_threads=n_threads, unified=kv_unified)
        n_cells = lc.llama_n_ctx(self._ctx)
        if prefix_cache and not model.reusable_prefixes:
            # Sliding-window layers drop old cells and recurrent state cannot be cut at a position:
            # a reused prefix would attend over missing cells. Recompute every prompt instead.
            log.info("prefix cache off: %s has sliding-window or recurrent layers", model.info.path.name)
            prefix_cache = False
        self.kv = KvManager(self._ctx, n_cells=n_cells, n_slots=n_slots, prefix_cache=prefix_cache,
                            per_slot=None if kv_unified else n_cells // n_slots)
        self.n_ctx = self.kv.capacity_per_sequence   # the longest sequence this engine can hold
        self.scheduler = Scheduler(self.kv, max_num_seqs=max_num_seqs,
                                   max_num_batched_tokens=max_num_batched_tokens)
        self._runner = BatchRunner(self._ctx, capacity=max_num_batched_tokens)
        self.outbox = Outbox()
        self._inbox: deque[Sequence] = deque()
        self._jobs: deque[tuple[Callable[[], object], Future]] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._dead: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="deeplocal-llamacpp", daemon=True)
        self._prompt_total = 0
        self._gen_total = 0
        self._events: deque[tuple[float, int, int]] = deque()   # (time, prompt, generated)

    # -- called from the asyncio side ----------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, seq: Sequence) -> None:
        with self._wake:
            if self._dead is not None or self._stopping:
                raise BackendUnavailable("the llama.cpp engine is not running", retry_after=5)
            if len(self._inbox) + len(self.scheduler.waiting) >= self.max_queue:
                raise Overloaded(f"the engine queue is full ({self.max_queue} waiting); retry shortly",
                                 retry_after=1)
            self._inbox.append(seq)
            self._wake.notify()

    def cancel(self, seq: Sequence) -> None:
        with self._wake:
            seq.cancelled = True
            self._wake.notify()

    def run_job(self, fn: Callable[[], object]) -> Future:
        """Run fn on the engine thread between steps (llama calls must not overlap)."""
        fut: Future = Future()
        with self._wake:
            if self._dead is not None or self._stopping:
                raise BackendUnavailable("the llama.cpp engine is not running", retry_after=5)
            self._jobs.append((fn, fut))
            self._wake.notify()
        return fut

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def stats(self) -> BackendStats:
        now = time.monotonic()
        events = [e for e in list(self._events) if now - e[0] <= RATE_WINDOW_S]
        sched = self.scheduler
        return BackendStats(
            waiting=len(sched.waiting) + len(self._inbox), running=len(sched.running),
            kv_used=self.kv.used_by_running, kv_total=self.kv.n_cells,
            prefix_hit_tokens=self.kv.hit_tokens, prefix_query_tokens=self.kv.query_tokens,
            preemptions=sched.preemptions, prompt_tokens_total=self._prompt_total,
            generation_tokens_total=self._gen_total,
            prompt_tokens_per_s=sum(e[1] for e in events) / RATE_WINDOW_S,
            generation_tokens_per_s=sum(e[2] for e in events) / RATE_WINDOW_S,
            healthy=self._dead is None and not self._stopping,
        )

    # -- the engine thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while True:
                with self._wake:
                    while not (self._stopping or self._inbox or self._jobs or self.scheduler.has_work()):
                        self._wake.wait()
                    if self._stopping:
                        break
                    new, self._inbox = list(self._inbox), deque()
                    jobs, self._jobs = list(self._jobs), deque()
                for seq in new:
                    self.scheduler.add(seq)
                for fn, fut in jobs:
                    self._run_job(fn, fut)
                self.step()
                self.outbox.flush()
        except BaseException as exc:  # the engine must never die silently
            log.exception("llama.cpp engine thread crashed")
            self._dead = exc
        finally:
            self._fail_all(BackendUnavailable("the llama.cpp engine stopped", retry_after=5))
            self._runner.close()
            lc.llama_free(self._ctx)

    def step(self) -> None:
        for seq in self.scheduler.drop_cancelled():
            self._close_sampler(seq)
        plan = self.scheduler.schedule()
        if not plan:
            return
        status, logits_at = self._runner.run(plan)
        if status != 0:
            for chunk in plan:                       # nothing was stored: roll back the promises
                if chunk.seq.slot >= 0:
                    self.kv.grow(chunk.seq.slot, chunk.seq.n_cached)
            if status == 1 and self.scheduler.preempt_newest():
                return                               # no KV slot: recompute the newest one later
            raise RuntimeError(f"llama_decode failed with status {status}")
        prompt_fed = generated = 0
        for chunk in plan:
            seq = chunk.seq
            prompt_fed += max(0, min(len(chunk.tokens), len(seq.prompt) - seq.n_cached))
            seq.n_cached += len(chunk.tokens)
            if chunk.wants_logits:
                self._sample(seq, logits_at[id(seq)])
                generated += 1
        self._prompt_total += prompt_fed
        self._gen_total += generated
        now = time.monotonic()
        self._events.append((now, prompt_fed, generated))
        while self._events and now - self._events[0][0] > RATE_WINDOW_S:
            self._events.popleft()

    def _sample(self, seq: Sequence, index: int) -> None:
        if seq.sampler is None:
            seq.sampler = SamplerChain(self.model, seq.params)
        token = seq.sampler.sample(self._ctx, index)
        logprob = None
        if seq.params.logprobs:
            logprob = token_logprobs(self.model, self._ctx, index, token, seq.params.top_logprobs)
        eog = self.model.is_eog(token) and not seq.params.ignore_eos
        piece = b"" if eog else self.model.piece(token)
        if eog:
            seq.output.append(token)
            self._finish(seq, FinishReason.STOP)
            return
        stopped = seq.push_token(token, piece, logprob)
        if stopped:
            self._finish(seq, FinishReason.STOP, stopped_on_string=True)
        elif len(seq.output) >= seq.max_new or seq.length >= self.n_ctx:
            self._finish(seq, FinishReason.LENGTH)

    def _finish(self, seq: Sequence, reason: FinishReason, *, stopped_on_string: bool = False) -> None:
        self.scheduler.finish(seq)
        seq.finish(reason, stopped_on_string=stopped_on_string)
        self._close_sampler(seq)

    def _close_sampler(self, seq: Sequence) -> None:
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None

    def _run_job(self, fn: Callable[[], object], fut: Future) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn())
        except BaseException as exc:  # noqa: BLE001  # handed to the caller through the future
            fut.set_exception(exc)

    def _fail_all(self, exc: BaseException) -> None:
        with self._wake:
            pending = list(self._inbox) + list(self.scheduler.waiting) + list(self.scheduler.running)
            self._inbox.clear()
            jobs = list(self._jobs)
            self._jobs.clear()
        for seq in pending:
            seq.emit(exc)
            self._close_sampler(seq)
        self.outbox.flush()
        for _, fut in jobs:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(exc)
