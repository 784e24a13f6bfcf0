"""One generation as the API sees it: admit, open the stream, meter and settle at the end."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from deeplocal.api.openai.deadline import RequestDeadline
from deeplocal.api.services import ServedModel, Services
from deeplocal.engine.types import Chunk, GenerationRequest, Usage
from deeplocal.metrics.logging import log_request, request_log_line

log = logging.getLogger("deeplocal.requests")


class GenerationCall:
    """Opened before the response starts, so admission errors become plain HTTP errors."""

    def __init__(self, services: Services, served: ServedModel, req: GenerationRequest, *,
                 principal: Any = None, data_class: str | None = None, timeout_s: float | None = None,
                 finding_types: tuple[str, ...] = (), pseudonymizer_factory: Any = None, stream: bool = True):
        """`stream` False: the client takes the answer whole, so a routed remote upstream is asked for
        one body instead of a stream."""
        self.services = services
        self.served = served
        self.req = req
        self.principal = principal
        self.data_class = data_class
        self.finding_types = finding_types
        self.stream = stream
        self._pseudonymizer_factory = pseudonymizer_factory
        privacy = services.privacy
        self._keep_text = privacy is not None and privacy.stores_bodies
        self._text: list[str] = []
        self.upstream = "local"
        self._stream: AsyncIterator[Chunk] | None = None
        self._first: Chunk | None = None
        self._reservation = None
        self._timer = None
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._usage: Usage | None = None
        self._started = time.monotonic()
        self._arrival = services.metrics.now() if services.metrics is not None else None
        self._deadline = RequestDeadline(timeout_s) if timeout_s else None
        self._closed = False
        self._finish_reason = None
        self.status = "499"   # until the generation ends normally

    async def open(self) -> None:
        gateway, backend = self.services.gateway, self.served.backend
        local = not (self.services.router is not None and self.served.routed)
        if gateway is not None and self.principal is not None:
            if local and hasattr(backend, "tokenize_request"):
                # Tokenize once: the engine reuses these ids instead of rendering and tokenizing again.
                ids = backend.tokenize_request(self.req)
                self.req = dataclasses.replace(self.req, prompt_token_ids=tuple(ids))
                self._prompt_tokens = len(ids)
            else:
                self._prompt_tokens = backend.count_tokens(self.req)
            max_tokens = self.req.sampling.max_tokens
            if max_tokens is None:   # the generation may run to the end of the context: reserve that
                max_tokens = max(0, (getattr(backend, "n_ctx", 0) or 0) - self._prompt_tokens)
            self._reservation = await gateway.reserve(
                self.principal, model=self.served.id, prompt_tokens=self._prompt_tokens,
                max_tokens=max_tokens)
        try:
            if not local:
                routed = await self.services.router.open(self.req, data_class=self.data_class,
                                                         pseudonymizer_factory=self._pseudonymizer_factory,
                                                         stream=self.stream)
                self.upstream, self._stream = routed.upstream, routed
                self._start_timer()                   # from arrival: routing time counts in TTFT
                self._first = await self._next()
            else:
                self._start_timer()
                if self._timer is not None:   # queue time ends when the engine admits the request
                    self.req = dataclasses.replace(self.req, on_admitted=self._timer.queued_done)
                self._stream = backend.generate(self.req)
                self._first = await self._next()
            if self._timer is not None and self._first.token_ids:
                self._timer.token(len(self._first.token_ids))
        except BaseException as exc:
            await self.close(status=str(getattr(exc, "status_code", 500)))
            raise

    async def _next(self) -> Chunk:
        if self._deadline is None:
            return await self._stream.__anext__()
        return await self._deadline.run(self._stream.__anext__())

    def _start_timer(self) -> None:
        metrics = self.services.metrics
        if metrics is not None:
            self._timer = metrics.request_started(model=self.served.id, upstream=self.upstream, t0=self._arrival)

    def headers(self) -> dict[str, str]:
        out = {"x-deeplocal-upstream": self.upstream}
        if self._reservation is not None:
            out.update(self.services.gateway.rate_limit_headers(self._reservation))
        return out

    async def chunks(self, *, close_at_end: bool = True) -> AsyncIterator[Chunk]:
        """All chunks, the pre-fetched first one included. Closing the iterator cancels generation.

        With `close_at_end` False a generation that ends normally is left for the caller to close
        (`close(status=self.status)`) once its answer is sent, which keeps metering, the ledger, the
        audit record and the request log off the client's wait; a failed or abandoned one is closed here.
        """
        status = "499"
        try:
            chunk = self._first
            while chunk is not None:
                self._completion_tokens += len(chunk.token_ids)
                if chunk.usage is not None:
                    self._usage = chunk.usage
                if chunk.finish_reason is not None:
                    self._finish_reason = chunk.finish_reason
                if self._keep_text:
                    self._text.append(chunk.text)
                yield chunk
                if chunk.finish_reason is not None:
                    status = "200"
                    return
                chunk = await self._next()
                if self._timer is not None and chunk.token_ids:
                    self._timer.token(len(chunk.token_ids))
        except StopAsyncIteration:
            status = "200"
        except asyncio.CancelledError:   # the client went away (or the server is cutting it short)
            raise
        except BaseException as exc:
            status = str(getattr(exc, "status_code", 500))
            raise
        finally:
            self.status = status
            if close_at_end or status != "200":
                await self.close(status=status)

    async def close(self, *, status: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self._deadline is not None:
            self._deadline.cancel()
        stream = self._stream
        if stream is not None and hasattr(stream, "aclose"):
            try:
                await stream.aclose()
            except Exception:  # closing a failed stream must not mask the original outcome
                log.debug("error while closing a stream", exc_info=True)
        usage = self._usage or Usage(prompt_tokens=self._prompt_tokens, completion_tokens=self._completion_tokens)
        finish = getattr(self._finish_reason, "value", None)
        tenant = getattr(self.principal, "tenant", None)
        principal_id = getattr(self.principal, "key_id", None)
        if self._timer is not None:
            cost_of = getattr(stream, "cost_of", None)   # a routed stream knows its upstream's prices
            summary = self._timer.finish(status=status, finish_reason=finish, prompt_tokens=usage.prompt_tokens,
                                         completion_tokens=usage.completion_tokens, tenant=tenant,
                                         spend_usd=cost_of(usage) if cost_of is not None else None)
            log_request(summary, request_id=self.req.request_id, principal_id=principal_id, tenant=tenant)
        else:
            request_log_line(request_id=self.req.request_id, principal_id=principal_id, model=self.served.id,
                             upstream=self.upstream, prompt_tokens=usage.prompt_tokens,
                             completion_tokens=usage.completion_tokens,
                             latency_s=time.monotonic() - self._started, status=status,
                             finish_reason=finish, tenant=tenant)
        if self._reservation is not None:
            await self.services.gateway.settle(self._reservation, prompt_tokens=usage.prompt_tokens,
                                               completion_tokens=usage.completion_tokens,
                                               upstream=self.upstream, status=status,
                                               request_id=self.req.request_id, wait=False)
        privacy = self.services.privacy
        if privacy is not None:
            await privacy.record(
                request_id=self.req.request_id, principal=self.principal, model=self.served.id,
                upstream=self.upstream, usage=usage, status=status, data_class=self.data_class,
                finding_types=self.finding_types, started=self._started,
                subject=self.req.user or principal_id,
                prompt=_prompt_text(self.req) if self._keep_text else None,
                completion="".join(self._text) if self._keep_text else None)


def _prompt_text(req: GenerationRequest) -> str:
    if req.messages is not None:
        return "\n".join(f"{m.role}: {m.content}" for m in req.messages)
    return req.prompt or ""
