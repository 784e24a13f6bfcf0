"""SSE parsing and arrival schedules, on bytes and numbers (the timing itself is tested on a real server)."""

from __future__ import annotations

import asyncio
import statistics

import httpx
import pytest

from deeplocal.bench.load import arrival_intervals
from deeplocal.bench.stream import _read_events, _StreamFailure, _Timeline


def _parse(body: bytes):
    async def run():
        async def chunks():
            for i in range(0, len(body), 7):      # split anywhere, as TCP does
                yield body[i:i + 7]

        timeline = _Timeline(0.0)
        await _read_events(httpx.Response(200, content=chunks()), timeline)
        return timeline.result()

    return asyncio.run(run())


CHUNK = b'data: {"choices":[{"delta":{"content":"%s"},"finish_reason":null}]}\n\n'


def test_comments_multiline_data_and_usage():
    body = (b": keep-alive\n\n" + b'data:{"choices":[{"delta":{"role":"assistant"}}]}\n\n'
            + CHUNK % b"a" + b'data: {"choices":[{"delta":{"reasoning_content":"b"},\ndata: "finish_reason":null}]}\n\n'
            + b'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
              b'"completion_tokens":2}}\n\ndata: [DONE]\n\n')
    result = _parse(body)
    assert result.ok and result.chunks == 2 and result.output_tokens == 2 and result.prompt_tokens == 3
    assert result.usage_reported and len(result.itl) == 1


def test_error_event_mid_stream():
    with pytest.raises(_StreamFailure) as exc:
        _parse(CHUNK % b"a" + b'data: {"error": {"message": "boom"}}\n\n')
    assert exc.value.kind == "stream_error"


def test_no_text_is_an_error():
    with pytest.raises(_StreamFailure) as exc:
        _parse(b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    assert exc.value.kind == "empty_stream"


def test_arrival_intervals():
    assert arrival_intervals(3, float("inf"), 1.0, 0) == [0.0, 0.0, 0.0]
    poisson = arrival_intervals(20_000, 4.0, 1.0, 0)
    bursty = arrival_intervals(20_000, 4.0, 0.25, 0)
    assert statistics.fmean(poisson) == pytest.approx(0.25, rel=0.03)
    assert statistics.fmean(bursty) == pytest.approx(0.25, rel=0.06)
    # Gamma: coefficient of variation 1/sqrt(shape): 1 for Poisson, 2 for burstiness 0.25.
    assert statistics.stdev(poisson) / 0.25 == pytest.approx(1.0, rel=0.05)
    assert statistics.stdev(bursty) / 0.25 == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValueError):
        arrival_intervals(1, 0.0, 1.0, 0)
