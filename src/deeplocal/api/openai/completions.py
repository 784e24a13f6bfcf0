"""POST /v1/completions: streaming and non-streaming text completion."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from deeplocal.api.deps import CallerDep, ServicesDep
from deeplocal.api.openai import sse
from deeplocal.api.openai.assemble import completion_logprobs
from deeplocal.api.openai.common import open_call, usage_dict
from deeplocal.api.openai.mapper import completion_to_generation
from deeplocal.api.openai.protocol import CompletionRequest
from deeplocal.api.openai.serving import GenerationCall

router = APIRouter()


@router.post("/v1/completions")
async def create_completion(body: CompletionRequest, services: ServicesDep, caller: CallerDep):
    served = services.models.get(body.model)
    req = completion_to_generation(body, request_id=caller.request_id, defaults=served.defaults,
                                   principal_id=getattr(caller.principal, "key_id", None))
    call = await open_call(services, served, req, caller)
    cid, created = f"cmpl-{caller.request_id}", int(time.time())
    echo = body.prompt if body.echo and isinstance(body.prompt, str) else ""
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_stream(call, cid, created, served.id, echo, include_usage),
                                 media_type="text/event-stream",
                                 headers={**call.headers(), "Cache-Control": "no-cache"})
    text, logprobs, finish, usage = [echo], [], None, None
    async for chunk in call.chunks():
        text.append(chunk.text)
        logprobs.extend(chunk.logprobs)
        if chunk.finish_reason is not None:
            finish, usage = chunk.finish_reason.value, chunk.usage
    body_out = {
        "id": cid, "object": "text_completion", "created": created, "model": served.id,
        "choices": [{"index": 0, "text": "".join(text), "finish_reason": finish,
                     "logprobs": completion_logprobs(logprobs, len(echo)) if body.logprobs is not None else None}],
        "usage": usage_dict(usage) if usage else None,
    }
    return JSONResponse(body_out, headers=call.headers())


async def _stream(call: GenerationCall, cid: str, created: int, model: str, echo: str,
                  include_usage: bool) -> AsyncIterator[str]:
    base = {"id": cid, "object": "text_completion", "created": created, "model": model}
    usage = None
    offset = len(echo)
    if echo:
        yield sse.event({**base, "choices": [{"index": 0, "text": echo, "logprobs": None, "finish_reason": None}]})
    try:
        async for chunk in call.chunks():
            finish = chunk.finish_reason.value if chunk.finish_reason is not None else None
            if chunk.text or finish or chunk.logprobs:
                lp = completion_logprobs(list(chunk.logprobs), offset) if chunk.logprobs else None
                offset += len(chunk.text)
                yield sse.event({**base, "choices": [{"index": 0, "text": chunk.text, "logprobs": lp,
                                                      "finish_reason": finish}]})
            if finish:
                usage = chunk.usage
    except Exception as exc:  # noqa: BLE001  # headers are sent: the error becomes an SSE event
        yield sse.error_event(exc)
        yield sse.DONE
        return
    if include_usage and usage is not None:
        yield sse.event({**base, "choices": [], "usage": usage_dict(usage)})
    yield sse.DONE
