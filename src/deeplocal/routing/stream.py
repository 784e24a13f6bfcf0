"""A routed generation: the first chunk already fetched, the rest streamed; pseudonyms restored on the
way back; the outcome reported to the upstream's breaker and counters exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from deeplocal.engine.errors import EngineError, UpstreamError
from deeplocal.engine.remote import UpstreamTimeout
from deeplocal.engine.types import Chunk, GenerationRequest, Message, Usage
from deeplocal.routing.upstreams import Upstream, cost_usd

log = logging.getLogger(__name__)


class StreamRestorer(Protocol):
    def feed(self, delta: str) -> str: ...

    def flush(self) -> str: ...


class Pseudonymizer(Protocol):
    """What routing needs from the gateway's reversible redaction (deeplocal.gateway.pii)."""

    def pseudonymize(self, text: str) -> str: ...

    def restorer(self) -> StreamRestorer: ...


def pseudonymize_request(req: GenerationRequest, ps: Pseudonymizer) -> GenerationRequest:
    """The same request with the prompt, every message's content and earlier tool-call arguments
    pseudonymized (one Pseudonymizer per request: the same value gets the same placeholder)."""
    messages = None
    if req.messages is not None:
        messages = tuple(_pseudonymize_message(m, ps) for m in req.messages)
    prompt = ps.pseudonymize(req.prompt) if req.prompt else req.prompt
    return dataclasses.replace(req, messages=messages, prompt=prompt)


def _pseudonymize_message(m: Message, ps: Pseudonymizer) -> Message:
    calls = tuple(_pseudonymize_call(c, ps) for c in m.tool_calls)
    content = ps.pseudonymize(m.content) if m.content else m.content
    return dataclasses.replace(m, content=content, tool_calls=calls)


def _pseudonymize_call(call: dict[str, Any], ps: Pseudonymizer) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": ps.pseudonymize(function["arguments"])}}


async def close_quietly(agen: object) -> None:
    """Close a generator; a broken stream failing to close must not mask the error being raised."""
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing an upstream stream failed", exc_info=True)


class RoutedStream:
    """Async iterator of Chunks from the chosen upstream (the pre-fetched first one included).

    After the first chunk nothing is retried: a failure raises a typed error for the API to turn into
    an SSE error event. `aclose()` cancels the upstream generation. `idle_s` None: the backend keeps
    its own idle and total deadlines, so reads here are not timed a second time.
    """

    def __init__(
        self,
        *,
        upstream: Upstream,
        model: str,
        data_class: str,
        agen: AsyncIterator[Chunk],
        first: Chunk,
        restorer: StreamRestorer | None,
        attempts: int,
        idle_s: float | None,
        deadline: float,
        on_end: Callable[[RoutedStream, bool | None], None] | None = None,
    ):
        self.upstream = upstream.name
        self.remote = upstream.remote
        self.model = model
        self.data_class = data_class
        self.pseudonymized = restorer is not None
        self.attempts = attempts
        self.usage: Usage | None = None
        self._up = upstream
        self._agen = agen
        self._first: Chunk | None = first
        self._restorer = restorer
        self._idle_s = idle_s
        self._deadline = deadline
        self._on_end = on_end
        self._ended = False

    @property
    def cost_usd(self) -> float:
        """What the generation cost, from the usage the upstream reported (0 before it did)."""
        return self.cost_of(self.usage) if self.usage else 0.0

    def cost_of(self, usage: Usage) -> float:
        """What `usage` costs at this upstream's prices (0 for an unpriced one, e.g. a local engine)."""
        return cost_usd(usage, self._up.settings.price)

    def __aiter__(self) -> RoutedStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._first is not None:
            chunk, self._first = self._first, None
            return self._restore(chunk)
        if self._ended:
            raise StopAsyncIteration
        try:
            if self._idle_s is None:
                chunk = await anext(self._agen)
            else:
                loop = asyncio.get_running_loop()
                async with asyncio.timeout_at(min(self._deadline, loop.time() + self._idle_s)):
                    chunk = await anext(self._agen)
        except StopAsyncIteration:
            self._end(ok=True)
            tail = self._restorer.flush() if self._restorer else ""
            if tail:
                return Chunk(text=tail)
            raise
        except TimeoutError as exc:
            await self._fail()
            raise UpstreamTimeout(f"upstream {self.upstream!r} stalled mid-stream") from exc
        except EngineError:
            await self._fail()
            raise
        except asyncio.CancelledError:
            await self._abandon()
            raise
        except Exception as exc:  # a backend broke its contract: still a typed error for the client
            await self._fail()
            raise UpstreamError(f"upstream {self.upstream!r} failed mid-stream: {exc!r}") from exc
        return self._restore(chunk)

    def _restore(self, chunk: Chunk) -> Chunk:
        if chunk.usage is not None:
            self.usage = chunk.usage
        if self._restorer is None:
            return chunk
        text = self._restorer.feed(chunk.text) if chunk.text else ""
        if chunk.finish_reason is not None:
            text += self._restorer.flush()
        return dataclasses.replace(chunk, text=text) if text != chunk.text else chunk

    async def aclose(self) -> None:
        """Stop early (client gone): cancels the upstream generation; no verdict on the upstream."""
        if not self._ended:
            await self._abandon()

    async def _fail(self) -> None:
        self._end(ok=False)
        await self._close_agen()

    async def _abandon(self) -> None:
        self._end(ok=None)
        await self._close_agen()

    async def _close_agen(self) -> None:
        await close_quietly(self._agen)

    def _end(self, *, ok: bool | None) -> None:
        if self._ended:
            return
        self._ended = True
        if ok is False:
            self._up.failures += 1
            self._up.breaker.record_failure()
        if self._on_end is not None:
            self._on_end(self, ok)
