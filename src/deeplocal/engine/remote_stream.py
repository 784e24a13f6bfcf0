"""OpenAI streaming events to engine Chunks, for RemoteBackend. Pure; no I/O.

The final Chunk carries both finish_reason and usage (OpenAI sends usage in a separate last event).
Structured `reasoning_content` and `tool_calls` deltas go into Chunk fields of those names when
Chunk has them; until then they are carried in the text the way a local model writes them
(`<think>...</think>`, `<tool_call>{...}</tool_call>`), which the API's reasoning splitter and tool
parser already understand, so nothing the upstream sent is dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import orjson

from deeplocal.engine.errors import UpstreamError
from deeplocal.engine.remote_wire import error_from_event
from deeplocal.engine.types import Chunk, FinishReason, TokenLogprob, Usage

_FINISH = {
    "stop": FinishReason.STOP,
    "eos": FinishReason.STOP,
    "content_filter": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "abort": FinishReason.ABORT,
}

@functools.cache
def chunk_fields() -> frozenset[str]:
    """Fields this build's Chunk has: `reasoning` and `tool_calls` pass through once Chunk has them."""
    return frozenset(f.name for f in dataclasses.fields(Chunk))


@functools.cache
def _merge_plan() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Chunk's fields by how merging treats them: (joined texts, concatenated tuples, last value)."""
    texts, tuples, last = [], [], []
    for f in dataclasses.fields(Chunk):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        (texts if isinstance(default, str) else tuples if isinstance(default, tuple) else last).append(f.name)
    return tuple(texts), tuple(tuples), tuple(last)


def merge_chunks(chunks: list[Chunk]) -> Chunk:
    """Chunks that arrived together as one: texts and token lists joined in order, finish_reason
    and usage (only ever on the last) kept. Fewer, larger deltas for the same stream."""
    if len(chunks) == 1:
        return chunks[0]
    texts, tuples, last = _merge_plan()
    merged: dict[str, Any] = {name: "".join(getattr(c, name) for c in chunks) for name in texts}
    for name in tuples:
        merged[name] = tuple(item for c in chunks for item in getattr(c, name))
    for name in last:
        merged[name] = next((v for c in reversed(chunks) if (v := getattr(c, name)) is not None), None)
    return Chunk(**merged)


def _chunk(**fields: Any) -> Chunk:
    known = chunk_fields()
    return Chunk(**{k: v for k, v in fields.items() if k in known})


class _TextFallback:
    """Carries reasoning and tool-call deltas in the text while Chunk has no fields for them."""

    def __init__(self, fields: frozenset[str]):
        self.keep_reasoning = "reasoning" in fields
        self.keep_tools = "tool_calls" in fields
        self._thinking = False
        self._calls: dict[int, dict[str, str]] = {}

    def fold(self, text: str, reasoning: str, tool_calls: tuple[Any, ...], *, finished: bool
             ) -> tuple[str, str, tuple[Any, ...]]:
        if not self.keep_reasoning:
            out = ""
            if reasoning:
                out = reasoning if self._thinking else "<think>" + reasoning
                self._thinking = True
            if self._thinking and (text or tool_calls or finished):
                out += "</think>\n\n"
                self._thinking = False
            text, reasoning = out + text, ""
        if not self.keep_tools:
            for call in tool_calls:
                self._add_call(call)
            tool_calls = ()
            if finished and self._calls:
                text += "".join(
                    "<tool_call>" + json.dumps({"name": c["name"], "arguments": _json_or_text(c["arguments"])},
                                               ensure_ascii=False) + "</tool_call>"
                    for _, c in sorted(self._calls.items()))
                self._calls = {}
        return text, reasoning, tool_calls

    def _add_call(self, call: Any) -> None:
        if not isinstance(call, dict):
            return
        slot = self._calls.setdefault(int(call.get("index", len(self._calls))), {"name": "", "arguments": ""})
        function = call.get("function") or {}
        slot["name"] += function.get("name") or ""
        slot["arguments"] += function.get("arguments") or ""


def _json_or_text(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


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
        self._as_text = _TextFallback(chunk_fields())

    def on_event(self, data: str, event: str = "message") -> list[Chunk]:
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            payload = orjson.loads(data)
        except ValueError as exc:
            raise UpstreamError(f"upstream {self.name!r} sent malformed SSE data: {data[:120]!r}") from exc
        if event == "error":
            raise error_from_event(self.name, payload)
        return self.on_payload(payload)

    def on_body(self, payload: Any) -> list[Chunk]:
        """A whole non-streamed answer (`message` instead of `delta`) as the Chunks of a finished stream."""
        if isinstance(payload, dict) and isinstance(payload.get("choices"), list):
            choices = [{**c, "delta": c.get("message") or {}} if isinstance(c, dict) and "message" in c else c
                       for c in payload["choices"]]
            payload = {**payload, "choices": choices}
        out = self.on_payload(payload)
        self.done = True
        return out + self.finish()

    def on_payload(self, payload: Any) -> list[Chunk]:
        """One decoded event (an object with `choices` and maybe `usage`, or an error)."""
        if isinstance(payload, dict) and "error" in payload:
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
        text, reasoning, tool_calls = self._as_text.fold(text, reasoning, tool_calls, finished=bool(finish))
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
