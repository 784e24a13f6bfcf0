"""Internal engine types. The wire schemas (api/openai/protocol.py) never reach below the mapper."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0                      # 0: disabled
    min_p: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None       # None: until the context is full
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    logit_bias: tuple[tuple[int, float], ...] = ()
    grammar: str | None = None          # GBNF grammar text, from response_format or tools
    ignore_eos: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str
    name: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation. Exactly one of `messages` or `prompt` is set."""

    request_id: str
    model: str
    sampling: SamplingParams = field(default_factory=SamplingParams)
    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    prompt_token_ids: tuple[int, ...] | None = None
    tools: tuple[dict[str, Any], ...] = ()
    add_generation_prompt: bool = True
    lora: str | None = None
    principal_id: str | None = None
    user: str | None = None           # the caller's end-user id (OpenAI `user`): the audit's data subject
    # Called once, from the engine's thread, when the engine first schedules the request (queue time).
    on_admitted: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[tuple[str, float, tuple[int, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class FinishReason(str, enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a generation. The last chunk carries finish_reason and usage."""

    text: str = ""
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    chat: bool = True
    completion: bool = True
    embeddings: bool = False
    lora: bool = False
    json_schema: bool = False
    logprobs: bool = False
    tools: bool = False


@dataclass(frozen=True, slots=True)
class BackendStats:
    """What routing and metrics read from a backend."""

    waiting: int = 0
    running: int = 0
    kv_used: int = 0
    kv_total: int = 0
    prefix_hit_tokens: int = 0
    prefix_query_tokens: int = 0
    preemptions: int = 0
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    prompt_tokens_per_s: float = 0.0
    generation_tokens_per_s: float = 0.0
    healthy: bool = True

    @property
    def kv_usage(self) -> float:
        return self.kv_used / self.kv_total if self.kv_total else 0.0

    @property
    def prefix_hit_rate(self) -> float:
        return self.prefix_hit_tokens / self.prefix_query_tokens if self.prefix_query_tokens else 0.0
