"""RemoteBackend's byte-level helpers and the non-streamed answer mapping, without I/O."""

from __future__ import annotations

import pytest

from deeplocal.engine.errors import Overloaded, UpstreamError
from deeplocal.engine.remote_http import LineSplitter
from deeplocal.engine.remote_stream import ChunkAssembler, merge_chunks
from deeplocal.engine.remote_wire import build_request
from deeplocal.engine.types import Chunk, FinishReason, GenerationRequest, Message, TokenLogprob, Usage


def split(*pieces: bytes) -> list[str]:
    s = LineSplitter()
    out = [line for p in pieces for line in s.feed(p)]
    return out + s.flush()


def test_lines_split_on_lf_crlf_and_cr_across_reads():
    assert split(b"data: a\n\nda", b"ta: b\r", b"\n\r\ndata: c\rdata: d") == [
        "data: a", "", "data: b", "", "data: c", "data: d"]


def test_a_character_split_between_reads_is_decoded_whole():
    text = "data: 北京\n".encode()
    assert split(text[:8], text[8:]) == ["data: 北京"]


def test_non_streamed_request_body():
    req = GenerationRequest(request_id="r", model="m", messages=(Message("user", "hi"),))
    _, body = build_request(req, model="x", stream=False)
    assert body["stream"] is False and "stream_options" not in body
    _, streamed = build_request(req, model="x")
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}


def test_a_whole_chat_answer_is_one_finished_chunk_with_usage():
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}}
    (chunk,) = ChunkAssembler("cloud").on_body(body)
    assert chunk.text == "Paris." and chunk.finish_reason is FinishReason.LENGTH
    assert chunk.usage == Usage(7, 2, 4)


def test_a_whole_answer_keeps_tool_calls_and_reasoning():
    body = {"choices": [{"message": {"role": "assistant", "content": None, "reasoning_content": "hmm",
                                     "tool_calls": [{"id": "c1", "type": "function",
                                                     "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
    chunks = ChunkAssembler("cloud").on_body(body)
    text = "".join(c.text for c in chunks)
    assert "<think>hmm</think>" in text and '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>' in text
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS and chunks[-1].usage == Usage(3, 5)


def test_a_whole_text_completion_and_an_error_body():
    (chunk,) = ChunkAssembler("c").on_body({"choices": [{"text": "once", "finish_reason": "stop"}]})
    assert chunk.text == "once" and chunk.finish_reason is FinishReason.STOP
    with pytest.raises(Overloaded):
        ChunkAssembler("c").on_body({"error": {"message": "slow down", "code": 429}})
    with pytest.raises(UpstreamError):
        ChunkAssembler("c").on_body(["not", "an", "object"])


def test_merged_chunks_keep_text_order_tokens_and_the_final_fields():
    lp = TokenLogprob("b", -0.5, (98,))
    merged = merge_chunks([Chunk(text="a", token_ids=(1,)), Chunk(text="b", token_ids=(2,), logprobs=(lp,)),
                           Chunk(text="c", finish_reason=FinishReason.STOP, usage=Usage(1, 3))])
    assert merged == Chunk(text="abc", token_ids=(1, 2), logprobs=(lp,), finish_reason=FinishReason.STOP,
                           usage=Usage(1, 3))
    one = Chunk(text="x")
    assert merge_chunks([one]) is one
