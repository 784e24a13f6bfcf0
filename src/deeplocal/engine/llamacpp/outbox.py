"""Hand a step's output to the asyncio side in one wake-up per event loop.

Waking the event loop once per token per sequence makes the loop thread preempt llama.cpp's
spinning worker threads many times a step (on a small CPU that costs far more than the Python work
itself). The engine thread collects what a step produced and delivers it with one call per loop.
Only the engine thread touches an Outbox.
"""

from __future__ import annotations

import asyncio
from typing import Any


def _deliver(items: list[tuple[asyncio.Queue, Any]]) -> None:
    for queue, item in items:
        queue.put_nowait(item)


class Outbox:
    def __init__(self) -> None:
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue, Any]]] = {}

    def put(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item: Any) -> None:
        self._pending.setdefault(loop, []).append((queue, item))

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for loop, items in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:   # that event loop is closed: nobody is listening
                pass
