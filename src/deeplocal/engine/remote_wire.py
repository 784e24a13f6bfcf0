"""The OpenAI wire format as RemoteBackend needs it: request bodies out, HTTP statuses and error
events to typed errors. Pure functions; no I/O. (Stream events to Chunks: remote_stream.py.)"""

from __future__ import annotations

import email.utils
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
from deeplocal.engine.types import GenerationRequest, Message

_CONTEXT_MARKERS = ("context length", "context_length", "maximum context", "context window", "too many tokens")


# -- request ------------------------------------------------------------------------------------


def build_request(req: GenerationRequest, *, model: str, grammar_param: str | None = None,
                  stream: bool = True) -> tuple[str, dict[str, Any]]:
    """(path under the base URL, JSON body) for a chat or text completion; streamed (with usage in
    the last event) unless `stream` is False, when the upstream answers with one JSON body.

    `grammar_param`: where this upstream takes a GBNF grammar, as a dotted path ("grammar" for
    llama-server, "structured_outputs.grammar" for vLLM); None: it takes none.
    """
    s = req.sampling
    body: dict[str, Any] = {"model": model, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
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
        if grammar_param is None:
            raise InvalidRequest("this upstream does not take grammar-constrained generation")
        *parents, leaf = grammar_param.split(".")
        slot = body
        for key in parents:
            slot = slot.setdefault(key, {})
        slot[leaf] = s.grammar
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
