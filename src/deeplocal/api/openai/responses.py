"""Responses for a GenerationCall: JSON (orjson) or SSE, each closing its call after the last byte
went out, so metering, the ledger, the audit record and the request log never delay the client.
The call is closed whatever happens to the send (an error, a client gone); closing twice is a no-op."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

import orjson
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from deeplocal.api.openai.serving import GenerationCall
from deeplocal.api.openai.sse import DONE

_DONE = DONE.encode()


class CallJSONResponse(JSONResponse):
    def __init__(self, call: GenerationCall, content: Any, *, headers: Mapping[str, str] | None = None):
        self._call = call
        super().__init__(content, headers=headers)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._call.close(status=self._call.status)


class CallStreamingResponse(StreamingResponse):
    """Server-sent events. A client that goes away stops the generation: one small task waits for the
    disconnect and cancels the stream (Starlette's own way, a task group of two tasks, costs several
    times more per response)."""

    def __init__(self, call: GenerationCall, events: AsyncIterator[str], *,
                 headers: Mapping[str, str] | None = None):
        self._call = call
        super().__init__(events, media_type="text/event-stream", headers=headers)

    async def stream_response(self, send: Send) -> None:
        """Starlette's, except that the piece ending with [DONE] also ends the body (one write less)."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for piece in self.body_iterator:
            body = piece.encode() if isinstance(piece, str) else bytes(piece)
            last = body.endswith(_DONE)
            await send({"type": "http.response.body", "body": body, "more_body": not last})
            if last:
                await _close(self.body_iterator)
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            streaming.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        cancelling = streaming.cancelling()
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not (gone and streaming.uncancel() <= cancelling):
                raise
        finally:
            watcher.cancel()
            await self._call.close(status=self._call.status)


async def _close(iterator: AsyncIterator[str]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def json_answer(call: GenerationCall, content: Awaitable[Any], *,
                      headers: Mapping[str, str] | None = None) -> CallJSONResponse:
    """The whole answer as JSON once `content` is built; a call whose answer could not be built (it
    will never be sent) is closed here with that error's status."""
    try:
        body = await content
    except BaseException as exc:
        await call.close(status=str(getattr(exc, "status_code", 500)))
        raise
    return CallJSONResponse(call, body, headers=headers)
