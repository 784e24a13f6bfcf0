"""POST /v1/completions: streaming and non-streaming text completion."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter

from deeplocal.api.deps import CallerDep, ServicesDep
from deeplocal.api.openai import sse
from deeplocal.api.openai.assemble import completion_logprobs
from deeplocal.api.openai.common import open_call, usage_dict
from deeplocal.api.openai.mapper import completion_to_generation
from deeplocal.api.openai.protocol import CompletionRequest
from deeplocal.api.openai.responses import CallStreamingResponse, json_answer
from deeplocal.api.openai.serving import GenerationCall

router = APIRouter()


@router.post("/v1/completions")
async def create_completion(body: CompletionRequest, services: ServicesDep, caller: CallerDep):
    served = services.models.get(body.model)
    req = completion_to_generation(body, request_id=caller.request_id, defaults=served.defaults,
                                   principal_id=getattr(caller.principal, "key_id", None))
    call = await open_call(services, served, req, caller, stream=bool(body.stream))
    cid, created = f"cmpl-{caller.request_id}", int(time.time())
    echo = body.prompt if body.echo and isinstance(body.prompt, str) else ""
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return CallStreamingResponse(call, _stream(call, cid, created, served.id, echo, include_usage),
                                     headers={**call.headers(), "Cache-Control": "no-cache"})
    return await json_answer(call, _collect(call, cid, created, served.id, echo, body.logprobs is not None),
                             headers=call.headers())


async def _collect(call: GenerationCall, cid: str, created: int, model: str, echo: str,
                   want_logprobs: bool) -> dict:
    text, logprobs, finish, usage = [echo], [], None, None
    async for chunk in call.chunks(close_at_end=False):
        text.append(chunk.text)
        logprobs.extend(chunk.logprobs)
        if chunk.finish_reason is not None:
            finish, usage = chunk.finish_reason.value, chunk.usage
    return {
        "id": cid, "object": "text_completion", "created": created, "model": model,
        "choices": [{"index": 0, "text": "".join(text), "finish_reason": finish,
                     "logprobs": completion_logprobs(logprobs, len(echo)) if want_logprobs else None}],
        "usage": usage_dict(usage) if usage else None,
    }


async def _stream(call: GenerationCall, cid: str, created: int, model: str, echo: str,
                  include_usage: bool) -> AsyncIterator[str]:
    base = {"id": cid, "object": "text_completion", "created": created, "model": model}
    usage = None
    offset = len(echo)
    if echo:
        yield sse.event({**base, "choices": [{"index": 0, "text": echo, "logprobs": None, "finish_reason": None}]})
    try:
        async for chunk in call.chunks(close_at_end=False):
            finish = chunk.finish_reason.value if chunk.finish_reason is not None else None
            if chunk.text or finish or chunk.logprobs:
                lp = completion_logprobs(list(chunk.logprobs), offset) if chunk.logprobs else None
                offset += len(chunk.text)
                yield sse.event({**base, "choices": [{"index": 0, "text": chunk.text, "logprobs": lp,
                                                      "finish_reason": finish}]})
            if finish:
                usage = chunk.usage
    except Exception as exc:  # noqa: BLE001  # headers are sent: the error becomes an SSE event
        yield sse.error_event(exc) + sse.DONE
        return
    end = sse.event({**base, "choices": [], "usage": usage_dict(usage)}) if include_usage and usage else ""
    yield end + sse.DONE   # in one write
