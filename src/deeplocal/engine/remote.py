"""A Backend that speaks the OpenAI HTTP API to any compatible endpoint (DeepSeek's API, OpenAI, vLLM,
Ollama, llama-server, another deeplocal). Every failure becomes a typed engine error.

`generate` streams (SSE); `complete` asks for one JSON body, for callers that do not stream to their
client. With `coalesce`, events that arrive in one network read are passed on as one Chunk (their
texts joined): the same stream in fewer, larger deltas, for a proxy that re-frames them anyway.

Timeouts: `connect_s` to open the connection; streamed, `first_token_s` from sending the request
to the first chunk and `idle_s` between chunks after that; `total_s` for the whole generation (a
non-streamed answer only arrives when it is finished, so only `total_s` bounds it). The backend keeps
these deadlines itself (`enforces_timeouts`): callers need no timer of their own per chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import orjson

from deeplocal.engine import remote_wire as wire
from deeplocal.engine.errors import UpstreamError
from deeplocal.engine.httpclient import ConnectionPool, Endpoint, Response
from deeplocal.engine.remote_http import UpstreamTimeout, json_headers, make_pool, post, read_body
from deeplocal.engine.remote_reader import BodyReader, SseReader
from deeplocal.engine.remote_stream import merge_chunks
from deeplocal.engine.types import BackendStats, Capabilities, Chunk, GenerationRequest

__all__ = ["RemoteBackend", "RemoteTimeouts", "UpstreamTimeout"]


@dataclass(frozen=True, slots=True)
class RemoteTimeouts:
    connect_s: float = 5.0
    first_token_s: float = 60.0
    idle_s: float = 60.0
    total_s: float = 600.0


class RemoteBackend:
    """One upstream model at one OpenAI-compatible base URL (the URL ends where `/chat/completions`
    would be appended, e.g. `https://api.deepseek.com/v1` or `http://127.0.0.1:8001/v1`)."""

    capabilities = Capabilities(chat=True, completion=True, embeddings=True, logprobs=True, tools=True)
    enforces_timeouts = True

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeouts: RemoteTimeouts = RemoteTimeouts(),
        headers: Mapping[str, str] | None = None,
        pool: ConnectionPool | None = None,
        grammar_param: str | None = None,
        coalesce: bool = False,
    ):
        """`grammar_param`: where the upstream takes a GBNF grammar ("grammar" for llama-server,
        "structured_outputs.grammar" for vLLM); set, the backend can serve grammar/JSON-schema requests.
        `pool`: a connection pool to share (the caller closes it); by default the backend owns one."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeouts = timeouts
        self.grammar_param = grammar_param
        self.coalesce = coalesce
        if grammar_param:
            self.capabilities = dataclasses.replace(RemoteBackend.capabilities, json_schema=True)
        base = dict(headers or {})
        if api_key:
            base["Authorization"] = f"Bearer {api_key}"
        stream_headers = json_headers(base, accept="text/event-stream")
        body_headers = json_headers(base, accept="application/json")
        self._endpoints = {   # (path, stream) -> the request head, rendered once
            (path, stream): Endpoint.post(self.base_url + path, stream_headers if stream else body_headers)
            for path in ("/chat/completions", "/completions", "/embeddings") for stream in (True, False)}
        self._pool = pool
        self._owns_pool = pool is None
        self._in_flight = 0
        self._outcomes = {"completed": 0, "failed": 0, "cancelled": 0}
        self._prompt_tokens = 0
        self._completion_tokens = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._pool is None:
            self._pool = make_pool(self.timeouts.connect_s)
            self._owns_pool = True

    async def stop(self) -> None:
        if self._pool is not None and self._owns_pool:
            await self._pool.close()
        self._pool = None

    # -- generation ------------------------------------------------------------------------------

    def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream the generation: chunks as the upstream sends them, the last with finish and usage."""
        return self._run(req, stream=True)

    def complete(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        """The same chunks from one non-streamed upstream answer (normally a single chunk)."""
        return self._run(req, stream=False)

    async def _run(self, req: GenerationRequest, *, stream: bool) -> AsyncIterator[Chunk]:
        await self.start()
        assert self._pool is not None
        path, body = wire.build_request(req, model=self.model, grammar_param=self.grammar_param, stream=stream)
        started = asyncio.get_running_loop().time()
        t = self.timeouts
        end = started + t.total_s
        self._in_flight += 1
        outcome = "failed"
        response: Response | None = None
        reader: SseReader | BodyReader | None = None
        try:
            first_by = min(end, started + t.first_token_s) if stream else end
            response = await post(self._pool, self.name, self._endpoints[path, stream], orjson.dumps(body),
                                  deadline=first_by)
            if stream or response.content_type == "text/event-stream":   # some servers stream regardless
                reader = SseReader(response, self.name, first_by=first_by, end=end, idle_s=t.idle_s)
            else:
                reader = BodyReader(response, self.name, end=end)
            while (batch := await reader.next_batch()) is not None:
                if self.coalesce and len(batch) > 1:
                    batch = [merge_chunks(batch)]   # what arrived in one read goes on as one delta
                for chunk in batch:
                    if chunk.usage is not None:
                        self._prompt_tokens += chunk.usage.prompt_tokens
                        self._completion_tokens += chunk.usage.completion_tokens
                    yield chunk
            outcome = "completed"
        except (GeneratorExit, asyncio.CancelledError):
            # Closed after the last chunk (the caller stops at finish_reason) is still a completion.
            outcome = "completed" if reader is not None and reader.complete else "cancelled"
            raise
        finally:
            self._in_flight -= 1
            self._outcomes[outcome] += 1
            if response is not None:
                if reader is not None and reader.complete:
                    response.release()   # read to its end: the connection goes back to the pool
                else:
                    response.close()     # broken or abandoned: drop the connection

    # -- the rest of the protocol ----------------------------------------------------------------

    async def embed(self, texts: list[str]) -> list[list[float]]:
        await self.start()
        assert self._pool is not None
        deadline = asyncio.get_running_loop().time() + self.timeouts.total_s
        body = orjson.dumps({"model": self.model, "input": list(texts)})
        response = await post(self._pool, self.name, self._endpoints["/embeddings", False], body,
                              deadline=deadline)
        try:
            raw = await read_body(response, self.name, deadline=deadline)
        finally:
            response.release()
        try:
            items = sorted(orjson.loads(raw)["data"], key=lambda item: item["index"])
            return [list(map(float, item["embedding"])) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"upstream {self.name!r} sent a malformed embeddings body") from exc

    def count_tokens(self, req: GenerationRequest) -> int:
        """An estimate (about four characters a token): the remote tokenizer is not available here."""
        chars = len(req.prompt or "") + len(req.prompt_token_ids or ()) * 4
        chars += sum(len(m.content) + 8 for m in req.messages or ())
        chars += sum(len(json.dumps(tool)) for tool in req.tools)
        return max(1, math.ceil(chars / 4))

    def stats(self) -> BackendStats:
        """In-flight generations as `running`. `healthy` stays True: whether a URL upstream is up is
        decided by the router's breaker and health probes, not by one request's outcome."""
        return BackendStats(
            running=self._in_flight,
            prompt_tokens_total=self._prompt_tokens,
            generation_tokens_total=self._completion_tokens,
        )

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def outcomes(self) -> dict[str, int]:
        """Generations that completed, failed, or were cancelled by the caller."""
        return dict(self._outcomes)

