"""One generation inside the engine: its tokens, state and the way its output reaches the caller."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from deeplocal.engine.textstream import StopMatcher, Utf8Stream
from deeplocal.engine.types import Chunk, FinishReason, SamplingParams, TokenLogprob, Usage


class SeqStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    request_id: str
    prompt: list[int]
    params: SamplingParams
    max_new: int                                  # generation budget (max_tokens or what fits)
    emit: Callable[[Chunk | BaseException], None]  # thread-safe hand-off to the asyncio side
    arrival: float = field(default_factory=time.monotonic)
    status: SeqStatus = SeqStatus.WAITING
    slot: int = -1                 # llama seq_id while it holds KV
    n_cached: int = 0              # tokens of `tokens` already in the KV cache
    prefix_hit: int = 0            # prompt tokens reused from the prefix cache
    output: list[int] = field(default_factory=list)
    cancelled: bool = False
    sampler: object | None = None  # SamplerChain, created on first admission
    first_token_at: float | None = None
    on_admitted: Callable[[], None] | None = None   # called on the first admission only
    started_at: float | None = None
    _utf8: Utf8Stream = field(default_factory=Utf8Stream)
    _stops: StopMatcher | None = None
    _pending_logprobs: list[TokenLogprob] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stops = StopMatcher(self.params.stop)

    @property
    def tokens(self) -> list[int]:
        return self.prompt + self.output

    @property
    def length(self) -> int:
        return len(self.prompt) + len(self.output)

    @property
    def uncached(self) -> int:
        """Tokens still to feed: the prompt (or its recompute after preemption), else the last token."""
        return self.length - self.n_cached

    def next_tokens(self, budget: int) -> list[int]:
        """tokens[n_cached:n_cached + budget], without building the whole list (this runs per step)."""
        start, end, p = self.n_cached, min(self.n_cached + budget, self.length), len(self.prompt)
        if end <= p:
            return self.prompt[start:end]
        if start >= p:
            return self.output[start - p:end - p]
        return self.prompt[start:] + self.output[:end - p]

    def push_token(self, token: int, piece: bytes, logprob: TokenLogprob | None) -> bool:
        """Record a sampled token and stream its text. Returns True when a stop string matched."""
        self.output.append(token)
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        if logprob is not None:
            self._pending_logprobs.append(logprob)
        text, stopped = self._stops.feed(self._utf8.feed(piece))
        if text or self._pending_logprobs:
            self.emit(Chunk(text=text, token_ids=(token,), logprobs=tuple(self._pending_logprobs)))
            self._pending_logprobs = []
        return stopped

    def finish(self, reason: FinishReason, *, stopped_on_string: bool = False) -> None:
        self.status = SeqStatus.FINISHED
        tail = "" if stopped_on_string else self._stops.feed(self._utf8.flush())[0] + self._stops.flush()
        usage = Usage(prompt_tokens=len(self.prompt), completion_tokens=len(self.output),
                      cached_tokens=self.prefix_hit)
        self.emit(Chunk(text=tail, logprobs=tuple(self._pending_logprobs), finish_reason=reason, usage=usage))
        self._pending_logprobs = []
