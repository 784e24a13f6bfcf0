"""RemoteBackend against a real scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from deeplocal.engine.errors import (
    BackendUnavailable,
    ContextTooLong,
    InvalidRequest,
    Overloaded,
    UpstreamError,
)
from deeplocal.engine.remote import RemoteBackend, RemoteTimeouts, UpstreamTimeout
from deeplocal.engine.types import FinishReason, GenerationRequest, Message, SamplingParams

pytestmark = pytest.mark.slow


def chat(text: str = "hello there", **sampling) -> GenerationRequest:
    return GenerationRequest(request_id="r1", model="public-name", messages=(Message("user", text),),
                             sampling=SamplingParams(**sampling))


async def collect(backend: RemoteBackend, req: GenerationRequest):
    return [chunk async for chunk in backend.generate(req)]


@pytest.fixture
async def backend(cloud):
    b = RemoteBackend("cloud", cloud.base_url, model="upstream-model", api_key="sk-test",
                      timeouts=RemoteTimeouts(connect_s=1, first_token_s=1.0, idle_s=1.0, total_s=5))
    await b.start()
    yield b
    await b.stop()


async def test_streams_text_then_finish_with_usage(backend, cloud):
    chunks = await collect(backend, chat("hello there", temperature=0.2, max_tokens=9, stop=("x",)))
    assert "".join(c.text for c in chunks) == "echo: hello there"
    last = chunks[-1]
    assert last.finish_reason is FinishReason.STOP
    assert last.usage is not None and last.usage.completion_tokens == 3
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    (entry,) = cloud.log()
    body = entry["body"]
    assert entry["path"] == "/v1/chat/completions"
    assert entry["authorization"] == "Bearer sk-test"
    assert body["model"] == "upstream-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 9 and body["stop"] == ["x"] and body["temperature"] == 0.2
    assert entry["outcome"] == "completed"


async def test_text_completion_uses_completions_path(backend, cloud):
    req = GenerationRequest(request_id="r2", model="m", prompt="once upon")
    chunks = await collect(backend, req)
    assert "".join(c.text for c in chunks) == "echo: once upon"
    assert cloud.log()[0]["path"] == "/v1/completions"


@pytest.mark.parametrize(
    ("step", "error", "retry_after"),
    [
        ({"kind": "status", "status": 429, "retry_after": 7}, Overloaded, 7.0),
        ({"kind": "status", "status": 500}, UpstreamError, None),
        ({"kind": "status", "status": 503}, BackendUnavailable, None),
        ({"kind": "status", "status": 400}, InvalidRequest, None),
        ({"kind": "status", "status": 400, "body": {"error": {
            "message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}}},
         ContextTooLong, None),
    ],
)
async def test_http_errors_map_to_typed_errors(backend, cloud, step, error, retry_after):
    cloud.script(step)
    with pytest.raises(error) as info:
        await collect(backend, chat())
    assert type(info.value) is error
    assert info.value.retry_after == retry_after
    assert "cloud" in info.value.message


async def test_mid_stream_drop_raises_after_the_chunks_already_sent(backend, cloud):
    cloud.script({"kind": "drop", "text": "one two three four", "after": 2})
    got = []
    with pytest.raises(UpstreamError, match="dropped the stream|ended the stream"):
        async for chunk in backend.generate(chat()):
            got.append(chunk.text)
    assert got == ["one ", "two "]


async def test_malformed_sse_is_an_upstream_error(backend, cloud):
    cloud.script({"kind": "malformed", "text": "a b c", "after": 1})
    with pytest.raises(UpstreamError, match="malformed SSE"):
        await collect(backend, chat())


async def test_first_token_timeout_when_the_upstream_hangs(backend, cloud):
    cloud.script({"kind": "hang"})
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await collect(backend, chat())
    assert 0.9 <= time.monotonic() - started < 3.0


async def test_idle_timeout_when_the_stream_stalls(backend, cloud):
    cloud.script({"kind": "hang_after", "text": "a b c", "after": 1})
    got = []
    with pytest.raises(UpstreamTimeout, match="next token"):
        async for chunk in backend.generate(chat()):
            got.append(chunk.text)
    assert got == ["a "]


async def test_connection_refused_is_backend_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    b = RemoteBackend("gone", f"http://127.0.0.1:{port}/v1", model="m")
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await collect(b, chat())
    await b.stop()


async def test_stats_count_in_flight_and_closing_cancels_upstream(backend, cloud):
    cloud.script({"kind": "ok", "text": "a b c d", "delay_s": 0.3})
    agen = backend.generate(chat())
    first = await anext(agen)
    assert first.text == "a "
    assert backend.stats().running == 1
    await agen.aclose()
    assert backend.stats().running == 0
    assert backend.outcomes == {"completed": 0, "failed": 0, "cancelled": 1}
    for _ in range(50):
        if cloud.log()[0]["outcome"] == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert cloud.log()[0]["outcome"] == "cancelled"


async def test_embeddings_come_back_in_input_order(backend, cloud):
    vectors = await backend.embed(["a", "abc"])
    assert vectors == [[1.0, 1.0], [3.0, 1.0]]


async def test_complete_asks_for_one_body_and_gives_one_finished_chunk(backend, cloud):
    chunks = [c async for c in backend.complete(chat("hello there", max_tokens=9))]
    assert len(chunks) == 1 and chunks[0].text == "echo: hello there"
    assert chunks[0].finish_reason is FinishReason.STOP and chunks[0].usage.completion_tokens == 3
    (entry,) = cloud.log()
    assert entry["body"]["stream"] is False and "stream_options" not in entry["body"]
    assert backend.outcomes == {"completed": 1, "failed": 0, "cancelled": 0}


async def test_complete_reads_a_stream_from_an_upstream_that_ignores_the_flag(backend, cloud):
    cloud.script({"kind": "ok", "sse_anyway": True})
    chunks = [c async for c in backend.complete(chat("hello there"))]
    assert "".join(c.text for c in chunks) == "echo: hello there"
    assert chunks[-1].finish_reason is FinishReason.STOP


async def test_complete_maps_statuses_to_typed_errors(backend, cloud):
    cloud.script({"kind": "status", "status": 429, "retry_after": 3})
    with pytest.raises(Overloaded):
        [c async for c in backend.complete(chat())]


async def test_stopping_at_the_finish_chunk_counts_as_completed(backend, cloud):
    for _ in range(3):
        agen = backend.generate(chat("a b c"))
        async for chunk in agen:
            if chunk.finish_reason is not None:
                break
        await agen.aclose()
    assert backend.outcomes == {"completed": 3, "failed": 0, "cancelled": 0}
    assert [e["outcome"] for e in cloud.log()] == ["completed"] * 3


async def test_coalesced_streams_carry_the_same_text(cloud):
    b = RemoteBackend("cloud", cloud.base_url, model="m", coalesce=True)
    try:
        chunks = [c async for c in b.generate(chat("one two three four five"))]
        assert "".join(c.text for c in chunks) == "echo: one two three four five"
        assert len(chunks) < 6 and chunks[-1].finish_reason is FinishReason.STOP
        assert all(c.finish_reason is None for c in chunks[:-1])
    finally:
        await b.stop()
