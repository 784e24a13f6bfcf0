"""Wire requests -> internal GenerationRequest. The only place that knows both sides."""

from __future__ import annotations

from typing import Any

from deeplocal.api.openai.protocol import ChatCompletionRequest, CompletionRequest, NamedToolChoice
from deeplocal.api.services import SamplingDefaults
from deeplocal.engine.errors import InvalidRequest
from deeplocal.engine.grammar import JSON_OBJECT_GRAMMAR, schema_to_grammar, tool_call_schema
from deeplocal.engine.types import GenerationRequest, Message, SamplingParams


def _pick(value, default):
    return default if value is None else value


def _sampling(body, defaults: SamplingDefaults, *, max_tokens: int | None, logprobs: bool,
              top_logprobs: int, grammar: str | None) -> SamplingParams:
    seed = body.seed
    if seed is not None:
        seed = seed % (2**32)
    bias = tuple((int(k), float(v)) for k, v in (body.logit_bias or {}).items())
    return SamplingParams(
        temperature=_pick(body.temperature, defaults.temperature),
        top_p=_pick(body.top_p, defaults.top_p),
        top_k=_pick(body.top_k, defaults.top_k),
        min_p=_pick(body.min_p, defaults.min_p),
        seed=seed,
        max_tokens=max_tokens,
        presence_penalty=_pick(body.presence_penalty, 0.0),
        frequency_penalty=_pick(body.frequency_penalty, 0.0),
        repetition_penalty=_pick(body.repetition_penalty, defaults.repetition_penalty),
        stop=tuple(body.stop or ()),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        logit_bias=bias,
        grammar=grammar,
        ignore_eos=body.ignore_eos,
    )


def tool_mode(body: ChatCompletionRequest) -> tuple[str, str | None]:
    """('none' | 'auto' | 'required', forced function name)."""
    if not body.tools or body.tool_choice == "none":
        return "none", None
    if isinstance(body.tool_choice, NamedToolChoice):
        return "required", body.tool_choice.function.name
    return body.tool_choice or "auto", None


def _chat_grammar(body: ChatCompletionRequest, tools: list[dict[str, Any]]) -> str | None:
    mode, only = tool_mode(body)
    if mode == "required":
        return schema_to_grammar(tool_call_schema(tools, only=only), param="tools")
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return JSON_OBJECT_GRAMMAR
    return schema_to_grammar(fmt.json_schema.schema_, param="response_format.json_schema.schema")


def chat_to_generation(body: ChatCompletionRequest, *, request_id: str, defaults: SamplingDefaults,
                       principal_id: str | None = None) -> GenerationRequest:
    tools = [t.model_dump(exclude_none=True) for t in body.tools or []]
    mode, _ = tool_mode(body)
    messages = []
    for m in body.messages:
        calls = tuple(c.model_dump() for c in m.tool_calls or ())
        if m.role == "tool" and not m.tool_call_id:
            raise InvalidRequest("messages with role 'tool' need tool_call_id", param="messages")
        role = "system" if m.role == "developer" else m.role
        messages.append(Message(role=role, content=m.text(), name=m.name, tool_calls=calls,
                                tool_call_id=m.tool_call_id))
    if body.response_format and body.response_format.type != "text" and mode == "required":
        raise InvalidRequest("response_format cannot be combined with a required tool call",
                             param="response_format")
    sampling = _sampling(body, defaults, max_tokens=body.max_completion_tokens or body.max_tokens,
                         logprobs=body.logprobs, top_logprobs=body.top_logprobs or 0,
                         grammar=_chat_grammar(body, tools))
    return GenerationRequest(request_id=request_id, model=body.model, sampling=sampling,
                             messages=tuple(messages), tools=tuple(tools) if mode != "none" else (),
                             principal_id=principal_id, user=body.user)


def completion_to_generation(body: CompletionRequest, *, request_id: str, defaults: SamplingDefaults,
                             principal_id: str | None = None) -> GenerationRequest:
    if body.suffix:
        raise InvalidRequest("suffix (fill-in-the-middle) is not supported", param="suffix")
    n_logprobs = body.logprobs or 0
    sampling = _sampling(body, defaults, max_tokens=body.max_tokens, logprobs=body.logprobs is not None,
                         top_logprobs=n_logprobs, grammar=None)
    prompt = body.prompt
    if isinstance(prompt, list):
        if not all(isinstance(t, int) and t >= 0 for t in prompt):
            raise InvalidRequest("prompt token ids must be non-negative integers", param="prompt")
        return GenerationRequest(request_id=request_id, model=body.model, sampling=sampling,
                                 prompt_token_ids=tuple(prompt), principal_id=principal_id, user=body.user)
    return GenerationRequest(request_id=request_id, model=body.model, sampling=sampling, prompt=prompt,
                             principal_id=principal_id, user=body.user)
