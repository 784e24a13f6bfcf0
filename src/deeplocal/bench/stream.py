"""One streamed request against an OpenAI-compatible endpoint, timed chunk by chunk.

Errors never escape: each failure becomes a RequestResult with an error type (http_429, http_500,
malformed_chunk, connection_dropped, incomplete_stream, timeout, connect_error, stream_error, cancelled).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from deeplocal.bench.datasets import BenchPrompt
from deeplocal.bench.metrics import RequestResult
from deeplocal.engine.sse import SseParser


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send: base URL ending in /v1, the model, the endpoint kind."""

    base_url: str
    model: str
    endpoint: str = "chat"              # "chat" -> /chat/completions, "completions" -> /completions
    api_key: str | None = None
    ignore_eos: bool = True             # ask for exactly max_tokens (vLLM/llama.cpp extension)
    temperature: float = 0.0
    extra_body: tuple[tuple[str, Any], ...] = ()

    @property
    def url(self) -> str:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def body(self, prompt: BenchPrompt) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": prompt.output_len,
            "temperature": self.temperature,
        }
        if self.ignore_eos:
            body["ignore_eos"] = True
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt.text}]
        else:
            body["prompt"] = prompt.text
        body.update(dict(self.extra_body))
        return body


class _StreamFailure(Exception):
    def __init__(self, kind: str, detail: str = ""):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _chunk_text(data: dict[str, Any]) -> str:
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, dict):
        parts = [delta.get("content"), delta.get("reasoning_content"), delta.get("reasoning")]
        text = "".join(p for p in parts if isinstance(p, str))
        if not text and delta.get("tool_calls"):
            text = json.dumps(delta["tool_calls"])
        return text
    text = choice.get("text")
    return text if isinstance(text, str) else ""


class _Timeline:
    """Accumulates the timings of one stream."""

    def __init__(self, start: float):
        self.start = start
        self.first: float | None = None
        self.last_text: float | None = None
        self.last_event: float | None = None
        self.gaps: list[float] = []
        self.chunks = 0
        self.usage: dict[str, Any] | None = None
        self.finished = False
        self.done = False

    def feed(self, payload: str, now: float) -> None:
        if payload == "[DONE]":
            self.done = True
            return
        try:
            data = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise _StreamFailure("malformed_chunk", f"not JSON: {payload[:80]!r}") from exc
        if not isinstance(data, dict):
            raise _StreamFailure("malformed_chunk", f"not an object: {payload[:80]!r}")
        if "error" in data:
            raise _StreamFailure("stream_error", str(data["error"])[:200])
        self.last_event = now
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        choices = data.get("choices") or []
        if choices and isinstance(choices[0], dict) and choices[0].get("finish_reason"):
            self.finished = True
        if _chunk_text(data):
            self.chunks += 1
            if self.first is None:
                self.first = now
            else:
                self.gaps.append(now - self.last_text)  # type: ignore[operator]
            self.last_text = now

    def result(self) -> RequestResult:
        if self.first is None:
            raise _StreamFailure("incomplete_stream" if not self.done else "empty_stream",
                                 "no generated text in the stream")
        if not (self.done or self.finished):
            raise _StreamFailure("incomplete_stream", "stream ended without finish_reason or [DONE]")
        usage = self.usage or {}
        completion = usage.get("completion_tokens")
        prompt = usage.get("prompt_tokens")
        reported = isinstance(completion, int)
        return RequestResult(
            ok=True,
            ttft=self.first - self.start,
            e2e=(self.last_event or self.last_text or self.first) - self.start,
            itl=tuple(self.gaps),
            prompt_tokens=prompt if isinstance(prompt, int) else None,
            output_tokens=completion if reported else self.chunks,
            chunks=self.chunks,
            usage_reported=reported,
            start=self.start,
        )


async def _read_events(response: httpx.Response, timeline: _Timeline) -> None:
    parser = SseParser()
    async for line in response.aiter_lines():
        now = time.perf_counter()
        event = parser.feed_line(line)
        if event is not None:
            timeline.feed(event.data, now)
    event = parser.flush()               # a last event without its blank line
    if event is not None:
        timeline.feed(event.data, time.perf_counter())


async def send(client: httpx.AsyncClient, target: Target, prompt: BenchPrompt) -> RequestResult:
    """Send one streaming request and time it; never raises except on cancellation."""
    start = time.perf_counter()
    timeline = _Timeline(start)
    try:
        async with client.stream("POST", target.url, json=target.body(prompt),
                                 headers=target.headers()) as response:
            if response.status_code >= 400:
                body = (await response.aread())[:200].decode("utf-8", "replace")
                return RequestResult(ok=False, error=f"http_{response.status_code}", detail=body,
                                     start=start)
            await _read_events(response, timeline)
        return timeline.result()
    except _StreamFailure as exc:
        return RequestResult(ok=False, error=exc.kind, detail=exc.detail, start=start)
    except httpx.TimeoutException as exc:
        return RequestResult(ok=False, error="timeout", detail=type(exc).__name__, start=start)
    except httpx.ConnectError as exc:
        return RequestResult(ok=False, error="connect_error", detail=str(exc)[:200], start=start)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        return RequestResult(ok=False, error="connection_dropped", detail=str(exc)[:200], start=start)
    except httpx.HTTPError as exc:
        return RequestResult(ok=False, error="http_error", detail=str(exc)[:200], start=start)


def cancelled_result(start: float) -> RequestResult:
    return RequestResult(ok=False, error="cancelled", start=start)
