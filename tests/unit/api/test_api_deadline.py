"""A request's time limit kept by one timer: it stops a wait in progress or the next one, and never
swallows a cancellation that is not its own."""

from __future__ import annotations

import asyncio
import time

import pytest

from deeplocal.api.openai.deadline import RequestDeadline
from deeplocal.engine.errors import GenerationTimeout


async def value_after(seconds: float, value: str = "chunk") -> str:
    await asyncio.sleep(seconds)
    return value


async def test_waits_within_the_limit_pass_through():
    deadline = RequestDeadline(1.0)
    assert [await deadline.run(value_after(0.01, str(i))) for i in range(3)] == ["0", "1", "2"]
    deadline.cancel()


async def test_a_wait_past_the_limit_is_stopped_with_a_timeout():
    deadline = RequestDeadline(0.1)
    started = time.monotonic()
    with pytest.raises(GenerationTimeout, match="time limit"):
        await deadline.run(value_after(5))
    assert time.monotonic() - started < 1
    assert asyncio.current_task().cancelling() == 0


async def test_expiry_between_waits_fails_the_next_wait_at_once():
    deadline = RequestDeadline(0.05)
    await asyncio.sleep(0.1)   # the consumer was busy elsewhere when the time ran out
    pending = value_after(5)
    with pytest.raises(GenerationTimeout):
        await deadline.run(pending)


async def test_an_outside_cancellation_stays_a_cancellation():
    deadline = RequestDeadline(5.0)
    task = asyncio.create_task(deadline.run(value_after(5)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline.cancel()
