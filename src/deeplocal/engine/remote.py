"""A Backend that speaks the OpenAI HTTP API to any compatible endpoint (DeepSeek's API, OpenAI, vLLM,
Ollama, llama-server, another deeplocal). Streaming only; every failure becomes a typed engine error.

Timeouts: `connect_s` to open the connection, `first_token_s` from sending the request to the first
chunk, `idle_s` between chunks after that, `total_s` for the whole generation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from deeplocal.engine import remote_wire as wire
from deeplocal.engine.errors import BackendUnavailable, UpstreamError
from deeplocal.engine.remote_stream import ChunkAssembler
from deeplocal.engine.sse import SseParser
from deeplocal.engine.types import BackendStats, Capabilities, Chunk, GenerationRequest


class UpstreamTimeout(UpstreamError):
    """An upstream did not connect, start or finish within its configured time."""

    status_code = 504
    code = "upstream_timeout"


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

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeouts: RemoteTimeouts = RemoteTimeouts(),
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        grammar_param: str | None = None,
    ):
        """`grammar_param`: where the upstream takes a GBNF grammar ("grammar" for llama-server,
        "structured_outputs.grammar" for vLLM); set, the backend can serve grammar/JSON-schema requests."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeouts = timeouts
        self.grammar_param = grammar_param
        if grammar_param:
            self.capabilities = dataclasses.replace(RemoteBackend.capabilities, json_schema=True)
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._client = client
        self._owns_client = client is None
        self._in_flight = 0
        self._outcomes = {"completed": 0, "failed": 0, "cancelled": 0}
        self._prompt_tokens = 0
        self._completion_tokens = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is None:
            t = self.timeouts
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(connect=t.connect_s, read=None, write=t.connect_s, pool=t.connect_s),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
                trust_env=False,
            )
            self._owns_client = True

    async def stop(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None

    # -- generation ------------------------------------------------------------------------------

    def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        return self._generate(req)

    async def _generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        await self.start()
        assert self._client is not None
        path, body = wire.build_request(req, model=self.model, grammar_param=self.grammar_param)
        loop = asyncio.get_running_loop()
        started = loop.time()
        end = started + self.timeouts.total_s
        self._in_flight += 1
        response: httpx.Response | None = None
        outcome = "failed"
        try:
            response = await self._send(path, body, deadline=min(end, started + self.timeouts.first_token_s))
            parser = SseParser()
            assembler = ChunkAssembler(self.name)
            lines = response.aiter_lines()
            got_first = False
            while True:
                limit = started + self.timeouts.first_token_s if not got_first else loop.time() + self.timeouts.idle_s
                line = await self._next_line(lines, deadline=min(limit, end), first=not got_first)
                event = parser.flush() if line is None else parser.feed_line(line)
                if event is not None:
                    for chunk in assembler.on_event(event.data, event.event):
                        got_first = True
                        self._count(chunk)
                        yield chunk
                if assembler.done or line is None:
                    break
            if line is not None:
                await _drain(lines)   # read the stream's end so the connection goes back to the pool
            for chunk in assembler.finish():
                self._count(chunk)
                yield chunk
            outcome = "completed"
        except (GeneratorExit, asyncio.CancelledError):
            outcome = "cancelled"
            raise
        finally:
            self._in_flight -= 1
            self._outcomes[outcome] += 1
            if response is not None:
                await response.aclose()

    async def _send(self, path: str, body: dict[str, Any], *, deadline: float) -> httpx.Response:
        assert self._client is not None
        request = self._client.build_request("POST", self.base_url + path, json=body, headers=self._headers)
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.name!r} sent no response headers in time") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise BackendUnavailable(f"upstream {self.name!r} is unreachable: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream {self.name!r} failed before responding: {exc!r}") from exc
        if response.status_code >= 400:
            try:
                async with asyncio.timeout_at(deadline):
                    raw = await response.aread()
            except (TimeoutError, httpx.HTTPError):
                raw = b""
            finally:
                await response.aclose()
            raise wire.error_from_status(
                self.name, response.status_code, raw.decode("utf-8", "replace"), response.headers
            )
        return response

    async def _next_line(self, lines: AsyncIterator[str], *, deadline: float, first: bool) -> str | None:
        try:
            async with asyncio.timeout_at(deadline):
                return await anext(lines)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            what = "first token" if first else "next token"
            raise UpstreamTimeout(f"upstream {self.name!r}: no {what} in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream {self.name!r} dropped the stream: {exc!r}") from exc

    def _count(self, chunk: Chunk) -> None:
        if chunk.usage is not None:
            self._prompt_tokens += chunk.usage.prompt_tokens
            self._completion_tokens += chunk.usage.completion_tokens

    # -- the rest of the protocol ----------------------------------------------------------------

    async def embed(self, texts: list[str]) -> list[list[float]]:
        await self.start()
        assert self._client is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.total_s
        body = {"model": self.model, "input": list(texts)}
        headers = {k: v for k, v in self._headers.items() if k != "Accept"}
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.post(self.base_url + "/embeddings", json=body, headers=headers)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.name!r}: embeddings timed out") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise BackendUnavailable(f"upstream {self.name!r} is unreachable: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream {self.name!r} failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise wire.error_from_status(self.name, response.status_code, response.text, response.headers)
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
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


async def _drain(lines: AsyncIterator[str], *, within_s: float = 0.5) -> None:
    """Consume what follows [DONE] (normally just the end of the chunked body), briefly."""
    try:
        async with asyncio.timeout(within_s):
            async for _ in lines:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass
