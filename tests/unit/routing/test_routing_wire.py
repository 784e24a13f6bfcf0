"""The OpenAI wire mapping of RemoteBackend and the SSE parser, without I/O."""

from __future__ import annotations

import json

import pytest

from deeplocal.engine.errors import (
    BackendUnavailable,
    ContextTooLong,
    InvalidRequest,
    Overloaded,
    UpstreamError,
)
from deeplocal.engine.reasoning import ReasoningSplitter
from deeplocal.engine.remote_stream import ChunkAssembler, chunk_fields
from deeplocal.engine.remote_wire import build_request, error_from_status, retry_after_seconds
from deeplocal.engine.sse import SseEvent, SseParser
from deeplocal.engine.tools import parse_tool_calls
from deeplocal.engine.types import FinishReason, GenerationRequest, Message, SamplingParams


def test_sse_parser_handles_comments_multiline_and_missing_final_blank():
    p = SseParser()
    lines = [": keep-alive", "event: error", "data: {\"a\":", "data: 1}", "", "data:x", "id: 7"]
    events = [e for line in lines if (e := p.feed_line(line))]
    assert events == [SseEvent(data='{"a":\n1}', event="error")]
    assert p.flush() == SseEvent(data="x", id="7")
    assert p.flush() is None


def test_build_chat_request():
    req = GenerationRequest(
        request_id="r", model="public", messages=(Message("system", "be brief"), Message("user", "hi")),
        sampling=SamplingParams(temperature=0.3, max_tokens=5, stop=("\n",), seed=1, top_k=40,
                                logprobs=True, top_logprobs=2, logit_bias=((15, -100.0),)),
        tools=({"type": "function", "function": {"name": "f"}},),
    )
    path, body = build_request(req, model="deepseek-chat")
    assert path == "/chat/completions"
    assert body["model"] == "deepseek-chat" and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert body["top_k"] == 40 and body["logit_bias"] == {"15": -100.0}
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and body["tools"][0]["type"] == "function"
    assert "min_p" not in body and "repetition_penalty" not in body and "presence_penalty" not in body


def test_build_completion_request_and_refuse_grammar():
    path, body = build_request(GenerationRequest(request_id="r", model="m", prompt_token_ids=(1, 2)), model="x")
    assert path == "/completions" and body["prompt"] == [1, 2]
    constrained = GenerationRequest(request_id="r", model="m", prompt="p",
                                    sampling=SamplingParams(grammar='root ::= "a"'))
    with pytest.raises(InvalidRequest, match="grammar"):
        build_request(constrained, model="x")
    _, body = build_request(constrained, model="x", grammar_param="structured_outputs.grammar")
    assert body["structured_outputs"] == {"grammar": 'root ::= "a"'}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retry_after"),
    [
        (429, '{"error": {"message": "slow down"}}', {"retry-after": "3"}, Overloaded, 3.0),
        (503, "overloaded", {}, BackendUnavailable, None),
        (500, "<html>", {}, UpstreamError, None),
        (401, '{"error": {"message": "bad key"}}', {}, UpstreamError, None),
        (400, '{"detail": "bad temperature"}', {}, InvalidRequest, None),
        (400, '{"error": {"message": "x", "code": "context_length_exceeded"}}', {}, ContextTooLong, None),
        (400, "This model's maximum context length is 4096 tokens", {}, ContextTooLong, None),
    ],
)
def test_error_from_status(status, body, headers, error, retry_after):
    err = error_from_status("up", status, body, headers)
    assert type(err) is error and err.retry_after == retry_after and "'up'" in err.message


def test_retry_after_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None


def data(obj) -> str:
    return json.dumps(obj)


def test_assembler_holds_finish_until_usage_and_passes_logprobs():
    a = ChunkAssembler("up")
    assert a.on_event(data({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})) == []
    lp = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105],
                       "top_logprobs": [{"token": "Hi", "logprob": -0.5}, {"token": "Yo", "logprob": -1.2}]}]}
    (c1,) = a.on_event(data({"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": lp}]}))
    assert c1.text == "Hi" and c1.logprobs[0].bytes == (72, 105) and c1.logprobs[0].top[1][0] == "Yo"
    assert a.on_event(data({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})) == []
    usage = {"prompt_tokens": 7, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 4}}
    assert a.on_event(data({"choices": [], "usage": usage})) == []
    assert a.on_event("[DONE]") == [] and a.done
    (last,) = a.finish()
    assert last.finish_reason is FinishReason.LENGTH
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.cached_tokens) == (7, 1, 4)


def test_assembler_completions_and_deepseek_cache_field():
    a = ChunkAssembler("up")
    (c,) = a.on_event(data({"choices": [{"index": 0, "text": "ab", "finish_reason": None}]}))
    assert c.text == "ab"
    assert a.on_event(data({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_cache_hit_tokens": 2}})) == []
    (last,) = a.finish()  # no [DONE]: still fine once the generation finished
    assert last.finish_reason is FinishReason.STOP and last.usage.cached_tokens == 2


@pytest.mark.parametrize(
    ("payload", "event", "error", "match"),
    [
        ("{not json", "message", UpstreamError, "malformed SSE"),
        ('"a string"', "message", UpstreamError, "non-object"),
        (data({"error": {"message": "boom", "code": 503}}), "message", BackendUnavailable, "boom"),
        (data({"message": "bad"}), "error", UpstreamError, "bad"),
        (data({"choices": "x"}), "message", UpstreamError, "malformed choices"),
    ],
)
def test_assembler_errors(payload, event, error, match):
    with pytest.raises(error, match=match):
        ChunkAssembler("up").on_event(payload, event)


def test_a_stream_that_stops_before_finishing_is_an_error():
    a = ChunkAssembler("up")
    a.on_event(data({"choices": [{"index": 0, "delta": {"content": "half"}}]}))
    with pytest.raises(UpstreamError, match="before the generation finished"):
        a.finish()


def _stream(events) -> list:
    a = ChunkAssembler("up")
    out = [c for e in events for c in a.on_event(data(e))]
    return out + a.finish()


def test_reasoning_content_is_kept():
    chunks = _stream([
        {"choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "hard"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Paris"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ])
    if "reasoning" in chunk_fields():
        assert "".join(c.reasoning for c in chunks) == "think hard"
        assert "".join(c.text for c in chunks) == "Paris"
    else:  # carried the way a local R1 model writes it; the API's splitter takes it apart again
        text = "".join(c.text for c in chunks)
        assert text == "<think>think hard</think>\n\nParis"
        splitter = ReasoningSplitter()
        reasoning, content = splitter.feed(text)
        tail = splitter.flush()
        assert (reasoning + tail[0], content + tail[1]) == ("think hard", "Paris")


def test_streamed_tool_call_deltas_are_kept():
    chunks = _stream([
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ])
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS
    if "tool_calls" in chunk_fields():
        assert sum(len(c.tool_calls) for c in chunks) == 3
    else:
        (call,) = parse_tool_calls("".join(c.text for c in chunks), {"get_weather"})
        assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}


def test_cost_counts_cached_prompt_tokens_at_the_cached_rate_and_never_goes_negative():
    from deeplocal.engine.types import Usage
    from deeplocal.routing.config import PriceSettings
    from deeplocal.routing.upstreams import cost_usd

    price = PriceSettings(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    assert cost_usd(Usage(1000, 100, 400), price) == pytest.approx((600 * 2 + 400 * 0.5 + 100 * 8) / 1e6)
    assert cost_usd(Usage(10, 0, 1000), price) == pytest.approx(10 * 0.5 / 1e6)   # an odd report
