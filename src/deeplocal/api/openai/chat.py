"""POST /v1/chat/completions: streaming and non-streaming."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter

from deeplocal.api.deps import CallerDep, ServicesDep
from deeplocal.api.openai import sse
from deeplocal.api.openai.assemble import ChatAssembler, Delta, chat_logprobs
from deeplocal.api.openai.common import open_call, usage_dict
from deeplocal.api.openai.mapper import chat_to_generation, tool_mode
from deeplocal.api.openai.protocol import ChatCompletionRequest
from deeplocal.api.openai.responses import CallStreamingResponse, json_answer
from deeplocal.api.openai.serving import GenerationCall

router = APIRouter()


def _assembler(body: ChatCompletionRequest, call: GenerationCall) -> ChatAssembler:
    mode, _ = tool_mode(body)
    names = {t.function.name for t in body.tools or []}
    backend = call.served.backend
    reasoning = call.served.reasoning
    if reasoning is None:
        reasoning = bool(getattr(backend, "reasoning_template", False))
    opens = reasoning and bool(getattr(backend, "opens_thinking", None) and backend.opens_thinking(call.req))
    return ChatAssembler(tool_mode=mode, tool_names=names, reasoning=reasoning, opens_thinking=opens)


def _delta_dict(delta: Delta) -> dict:
    out: dict = {}
    if delta.reasoning:
        out["reasoning_content"] = delta.reasoning
    if delta.content:
        out["content"] = delta.content
    if delta.tool_calls:
        out["tool_calls"] = delta.tool_calls
    return out


@router.post("/v1/chat/completions")
async def create_chat_completion(body: ChatCompletionRequest, services: ServicesDep, caller: CallerDep):
    served = services.models.get(body.model)
    req = chat_to_generation(body, request_id=caller.request_id, defaults=served.defaults,
                             principal_id=getattr(caller.principal, "key_id", None))
    call = await open_call(services, served, req, caller, stream=bool(body.stream))
    assembler = _assembler(body, call)
    completion_id = f"chatcmpl-{caller.request_id}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return CallStreamingResponse(
            call, _stream(call, assembler, completion_id, created, served.id, body.logprobs, include_usage),
            headers={**call.headers(), "Cache-Control": "no-cache"})
    return await json_answer(call, _collect(call, assembler, completion_id, created, served.id, body.logprobs),
                             headers=call.headers())


async def _stream(call: GenerationCall, assembler: ChatAssembler, cid: str, created: int, model: str,
                  want_logprobs: bool, include_usage: bool) -> AsyncIterator[str]:
    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}

    def frame(delta: dict, finish: str | None = None, logprobs: dict | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return sse.event({**base, "choices": [choice]})

    # Events that are ready together go out in one write: the opening with the first delta (already
    # in hand when the response starts), the usage event with [DONE].
    opening = frame({"role": "assistant", "content": ""})
    usage = None
    try:
        async for chunk in call.chunks(close_at_end=False):
            delta = assembler.feed(chunk)
            finish = None
            if chunk.finish_reason is not None:
                tail = assembler.finish()
                delta.content += tail.content
                delta.reasoning += tail.reasoning
                delta.tool_calls = tail.tool_calls
                finish = "tool_calls" if assembler.called_tools else chunk.finish_reason.value
                usage = chunk.usage
            if not delta.empty() or finish:
                logprobs = chat_logprobs(delta.logprobs) if want_logprobs and delta.logprobs else None
                yield opening + frame(_delta_dict(delta), finish, logprobs)
                opening = ""
            elif opening:
                yield opening
                opening = ""
    except Exception as exc:  # noqa: BLE001  # after headers were sent an error can only be an event
        yield opening + sse.error_event(exc) + sse.DONE
        return
    end = sse.event({**base, "choices": [], "usage": usage_dict(usage)}) if include_usage and usage else ""
    yield opening + end + sse.DONE


async def _collect(call: GenerationCall, assembler: ChatAssembler, cid: str, created: int, model: str,
                   want_logprobs: bool) -> dict:
    content, reasoning, tool_calls, logprobs = [], [], [], []
    finish, usage = None, None
    async for chunk in call.chunks(close_at_end=False):
        parts = [assembler.feed(chunk)]
        if chunk.finish_reason is not None:
            parts.append(assembler.finish())
            finish = "tool_calls" if assembler.called_tools else chunk.finish_reason.value
            usage = chunk.usage
        for d in parts:
            content.append(d.content)
            reasoning.append(d.reasoning)
            tool_calls.extend(d.tool_calls)
            logprobs.extend(d.logprobs)
    message: dict = {"role": "assistant", "content": "".join(content) or (None if tool_calls else "")}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in tool_calls]
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message,
                     "logprobs": chat_logprobs(logprobs) if want_logprobs else None,
                     "finish_reason": finish}],
        "usage": usage_dict(usage) if usage else None,
    }
