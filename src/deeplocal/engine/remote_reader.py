"""Reading one upstream response into Chunks, for RemoteBackend: a streamed SSE body read by read, or
one non-streamed JSON body. `next_batch()` returns the chunks of the next read (maybe none), then None.
"""

from __future__ import annotations

import asyncio

import orjson

from deeplocal.engine.errors import EngineError, UpstreamError
from deeplocal.engine.httpclient import HttpClientError, Response
from deeplocal.engine.remote_http import LineSplitter, UpstreamTimeout, read_body
from deeplocal.engine.remote_stream import ChunkAssembler
from deeplocal.engine.sse import SseParser
from deeplocal.engine.types import Chunk

_DRAIN_S = 0.5   # after [DONE], how long to wait for the end of the body (so the connection is reused)


class SseReader:
    """A streamed response. Deadlines: the first chunk by `first_by`, each later read within `idle_s`,
    everything by `end` (loop times); a miss raises UpstreamTimeout, a broken stream UpstreamError."""

    def __init__(self, response: Response, name: str, *, first_by: float, end: float,
                 idle_s: float):
        self._loop = asyncio.get_running_loop()
        self._content = response
        self._name = name
        self._first_by, self._end, self._idle_s = first_by, end, idle_s
        self._lines, self._parser, self._assembler = LineSplitter(), SseParser(), ChunkAssembler(name)
        self._got_first = False
        self._ended = False
        self.complete = False   # the body was read to its end (the connection can be reused)
        self._error: EngineError | None = None   # raised on the next call, after the chunks before it

    async def next_batch(self) -> list[Chunk] | None:
        if self._error is not None:
            raise self._error
        if self._ended:
            return None
        assembler = self._assembler
        if assembler.done:   # [DONE] seen: read the end of the body so that the connection is reused
            self._ended = True
            await self._drain()
            return assembler.finish()
        if self._got_first:
            data = await self._read(min(self._end, self._loop.time() + self._idle_s), "next token")
        else:
            data = await self._read(self._first_by, "first token")
        out: list[Chunk] = []
        try:
            for line in self._lines.feed(data) if data else self._lines.flush():
                event = self._parser.feed_line(line)
                if event is not None:
                    out += assembler.on_event(event.data, event.event)
            if not data:   # end of the body
                self.complete = True
                event = self._parser.flush()
                if event is not None:
                    out += assembler.on_event(event.data, event.event)
                self._ended = True
                out += assembler.finish()
        except EngineError as exc:
            if not out:
                raise
            self._error = exc
        if out:
            self._got_first = True
        return out

    async def _read(self, deadline: float, what: str) -> bytes:
        try:
            return await self._content.readany(deadline=deadline)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self._name!r}: no {what} in time") from exc
        except HttpClientError as exc:
            raise UpstreamError(f"upstream {self._name!r} dropped the stream: {exc}") from exc

    async def _drain(self) -> None:
        until = self._loop.time() + _DRAIN_S
        try:
            while await self._read(until, "end of the stream"):
                pass
            self.complete = True
        except UpstreamError:
            pass


class BodyReader:
    """A non-streamed response: the whole JSON body by `end`, as the chunks of one batch."""

    def __init__(self, response: Response, name: str, *, end: float):
        self._response = response
        self._name = name
        self._end = end
        self._read = False
        self.complete = False

    async def next_batch(self) -> list[Chunk] | None:
        if self._read:
            return None
        self._read = True
        raw = await read_body(self._response, self._name, deadline=self._end)
        self.complete = True
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"upstream {self._name!r} sent a malformed body: {raw[:120]!r}") from exc
        return ChunkAssembler(self._name).on_body(payload)
