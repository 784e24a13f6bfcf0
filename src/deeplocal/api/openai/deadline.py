"""A request's overall time limit, kept by one timer per request instead of one per chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from deeplocal.engine.errors import GenerationTimeout

T = TypeVar("T")


class RequestDeadline:
    """`run(aw)` awaits `aw` unless the deadline passes first, then raises GenerationTimeout.

    The timer fires once. If a `run` is waiting then, its task is cancelled (the awaited generation is
    cancelled like under `asyncio.timeout`) and the cancellation becomes GenerationTimeout; if it fires
    between two waits, the next `run` fails at once. `cancel()` stops the timer.
    """

    def __init__(self, timeout_s: float):
        self._loop = asyncio.get_running_loop()
        self._limit_s = timeout_s
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(timeout_s, self._fire)
        self._waiter: asyncio.Task | None = None
        self._cancelled_waiter = False
        self.expired = False

    def _error(self) -> GenerationTimeout:
        return GenerationTimeout(f"the request ran past its time limit ({self._limit_s:.0f}s) and was stopped")

    def _fire(self) -> None:
        self._handle = None
        self.expired = True
        if self._waiter is not None and not self._waiter.done():
            self._cancelled_waiter = True
            self._waiter.cancel()

    async def run(self, aw: Awaitable[T]) -> T:
        if self.expired:
            close = getattr(aw, "close", None)
            if close is not None:
                close()   # a coroutine that will never run
            raise self._error()
        task = asyncio.current_task()
        assert task is not None
        self._waiter, self._cancelled_waiter = task, False
        cancelling = task.cancelling()
        try:
            return await aw
        except asyncio.CancelledError:
            if self._cancelled_waiter and task.uncancel() <= cancelling:
                raise self._error() from None
            raise
        finally:
            self._waiter = None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
