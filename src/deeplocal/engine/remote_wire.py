"""The OpenAI wire format as RemoteBackend needs it: request bodies out, stream events in, HTTP
statuses to typed errors. Pure functions and one small state machine; no I/O."""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import time
from collections.abc import Mapping
from typing import Any

from deeplocal.engine.errors import (
    BackendUnavailable,
    ContextTooLong,
    EngineError,
    InvalidRequest,
    Overloaded,
    UpstreamError,
)
from deeplocal.engine.types import Chunk, FinishReason, GenerationRequest, Message, TokenLogprob, Usage

_FINISH = {
    "stop": FinishReason.STOP,
    "eos": FinishReason.STOP,
    "content_filter": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "abort": FinishReason.ABORT,
}
_CONTEXT_MARKERS = ("context length", "context_length", "maximum context", "context window", "too many tokens")


# -- request ------------------------------------------------------------------------------------


def build_request(req: GenerationRequest, *, model: str) -> tuple[str, dict[str, Any]]:
    """(path under the base URL, JSON body) for a streaming chat or text completion."""
    s = req.sampling
    body: dict[str, Any] = {"model": model, "stream": True, "stream_options": {"include_usage": True}}
    chat = req.messages is not None
    if chat:
        body["messages"] = [_message(m) for m in req.messages or ()]
        if req.tools:
            body["tools"] = list(req.tools)
    elif req.prompt is not None:
        body["prompt"] = req.prompt
    elif req.prompt_token_ids is not None:
        body["prompt"] = list(req.prompt_token_ids)
    else:
        raise InvalidRequest("a generation request needs messages or a prompt")
    if s.grammar is not None:
        raise InvalidRequest("this upstream does not take grammar-constrained generation")
    body["temperature"] = s.temperature
    body["top_p"] = s.top_p
    optional: dict[str, Any] = {
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "stop": list(s.stop) or None,
        "presence_penalty": s.presence_penalty or None,
        "frequency_penalty": s.frequency_penalty or None,
        "logit_bias": {str(tok): bias for tok, bias in s.logit_bias} or None,
        # Extensions vLLM, llama-server and deeplocal accept; sent only when they differ from neutral.
        "top_k": s.top_k or None,
        "min_p": s.min_p or None,
        "repetition_penalty": s.repetition_penalty if s.repetition_penalty != 1.0 else None,
        "ignore_eos": True if s.ignore_eos else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if s.logprobs:
        if chat:
            body["logprobs"] = True
            body["top_logprobs"] = s.top_logprobs
        else:
            body["logprobs"] = s.top_logprobs
    return ("/chat/completions" if chat else "/completions"), body


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = list(m.tool_calls)
        if not m.content:
            out["content"] = None
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


# -- errors -------------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_text(body: str) -> tuple[str, str]:
    """(message, code) from an OpenAI-style, FastAPI-style or plain error body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()[:300], ""
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or json.dumps(err)[:300]
            return str(message)[:300], str(err.get("code") or err.get("type") or "")
        return str(err)[:300], ""
    return body.strip()[:300], ""


def error_from_status(name: str, status: int, body: str, headers: Mapping[str, str]) -> EngineError:
    message, code = _error_text(body)
    text = f"upstream {name!r} answered {status}: {message}"
    retry_after = retry_after_seconds(headers.get("retry-after"))
    if status in (400, 413, 422):
        if any(marker in f"{message} {code}".lower() for marker in _CONTEXT_MARKERS):
            return ContextTooLong(text)
        return InvalidRequest(text)
    if status == 429:
        return Overloaded(text, retry_after=retry_after)
    if status == 503:
        return BackendUnavailable(text, retry_after=retry_after)
    return UpstreamError(text, retry_after=retry_after)


def error_from_event(name: str, payload: Any) -> EngineError:
    """An error sent inside the stream (`data: {"error": {...}}` or `event: error`)."""
    err = payload.get("error", payload) if isinstance(payload, dict) else payload
    status = err.get("code") if isinstance(err, dict) else None
    if not isinstance(status, int) or not 400 <= status < 600:
        status = 502
    return error_from_status(name, status, json.dumps({"error": err}), {})


# -- stream -------------------------------------------------------------------------------------


@functools.cache
def chunk_fields() -> frozenset[str]:
    """Fields this build's Chunk has: `reasoning` and `tool_calls` pass through once Chunk has them."""
    return frozenset(f.name for f in dataclasses.fields(Chunk))


def _chunk(**fields: Any) -> Chunk:
    known = chunk_fields()
    return Chunk(**{k: v for k, v in fields.items() if k in known})


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict) or "prompt_tokens" not in raw:
        return None
    details = raw.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if cached is not None else raw.get("prompt_cache_hit_tokens", 0)
    return Usage(int(raw["prompt_tokens"]), int(raw.get("completion_tokens") or 0), int(cached or 0))


def _token_bytes(item: dict[str, Any], token: str) -> tuple[int, ...]:
    raw = item.get("bytes")
    return tuple(raw) if isinstance(raw, list) else tuple(token.encode("utf-8"))


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...]:
    if not isinstance(raw, dict):
        return ()
    if isinstance(raw.get("content"), list):  # chat
        out = []
        for item in raw["content"]:
            top = tuple(
                (t["token"], float(t["logprob"]), _token_bytes(t, t["token"]))
                for t in item.get("top_logprobs") or ()
            )
            out.append(TokenLogprob(item["token"], float(item["logprob"]), _token_bytes(item, item["token"]), top))
        return tuple(out)
    tokens, values = raw.get("tokens") or [], raw.get("token_logprobs") or []  # completions
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(tok, float(lp), tuple(tok.encode("utf-8")),
                     tuple((t, float(v), tuple(t.encode("utf-8"))) for t, v in (top or {}).items()))
        for tok, lp, top in zip(tokens, values, tops)
        if lp is not None
    )


class ChunkAssembler:
    """Turns stream events into Chunks. The chunk with finish_reason is held back until the usage
    event (OpenAI sends it last, with no choices) so that the final Chunk carries both."""

    def __init__(self, name: str):
        self.name = name
        self.done = False
        self._held: Chunk | None = None
        self._finished = False

    def on_event(self, data: str, event: str = "message") -> list[Chunk]:
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise UpstreamError(f"upstream {self.name!r} sent malformed SSE data: {data[:120]!r}") from exc
        if event == "error" or (isinstance(payload, dict) and "error" in payload):
            raise error_from_event(self.name, payload)
        if not isinstance(payload, dict):
            raise UpstreamError(f"upstream {self.name!r} sent a non-object SSE event")
        out: list[Chunk] = []
        choices = payload.get("choices") or []
        if not isinstance(choices, list):
            raise UpstreamError(f"upstream {self.name!r} sent malformed choices")
        for choice in choices[:1]:
            out.extend(self._on_choice(choice))
        usage = _usage(payload.get("usage"))
        if usage is not None:
            if self._held is None:
                self._held = _chunk(usage=usage)
            else:
                self._held = dataclasses.replace(self._held, usage=usage)
        return out

    def _on_choice(self, choice: Any) -> list[Chunk]:
        if not isinstance(choice, dict):
            raise UpstreamError(f"upstream {self.name!r} sent a malformed choice")
        delta = choice.get("delta")
        if isinstance(delta, dict):  # chat
            text = delta.get("content") or ""
            reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
            tool_calls = tuple(delta.get("tool_calls") or ())
        else:  # completions
            text, reasoning, tool_calls = choice.get("text") or "", "", ()
        raw_finish = choice.get("finish_reason")
        finish = _FINISH.get(raw_finish, FinishReason.STOP) if raw_finish else None
        logprobs = _logprobs(choice.get("logprobs"))
        if not (text or reasoning or tool_calls or logprobs or finish):
            return []  # the role-only opening delta, or keep-alive
        chunk = _chunk(text=text, logprobs=logprobs, finish_reason=finish, reasoning=reasoning,
                       tool_calls=tool_calls)
        out = []
        if self._held is not None and not (finish and self._held.finish_reason is None):
            out.append(self._held)
            self._held = None
        if finish:
            self._finished = True
            if self._held is not None:  # usage came first: merge it in
                chunk = dataclasses.replace(chunk, usage=self._held.usage)
            self._held = chunk
        else:
            out.append(chunk)
        return out

    def finish(self) -> list[Chunk]:
        """End of the byte stream. A stream that never finished is an upstream failure."""
        if not (self.done or self._finished):
            raise UpstreamError(f"upstream {self.name!r} ended the stream before the generation finished")
        held, self._held = self._held, None
        return [held] if held is not None else []
