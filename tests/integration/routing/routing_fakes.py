"""An in-process local Backend for routing tests, whose queue a test can fill."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from deeplocal.engine.errors import BackendUnavailable, Overloaded
from deeplocal.engine.types import BackendStats, Capabilities, Chunk, FinishReason, GenerationRequest, Usage


class QueueBackend:
    """An in-process local Backend with `max_running` slots and a waiting queue of `max_queue`.

    While `gate` is clear, admitted generations hold their slot after the first token, so a test can
    fill the engine; `down = True` makes it refuse like an engine that is stopping.
    """

    capabilities = Capabilities(chat=True, completion=True)

    def __init__(self, name: str, *, max_running: int = 1, max_queue: int = 4, reply: str = "local answer"):
        self.name = name
        self.max_running = max_running
        self.max_queue = max_queue
        self.reply = reply
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.waiting = 0
        self.served: list[str] = []          # request ids that completed here
        self.seen: list[GenerationRequest] = []
        self._free = asyncio.Condition()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [[0.0] for _ in texts]

    def count_tokens(self, req: GenerationRequest) -> int:
        return sum(len(m.content.split()) for m in req.messages or ())

    def stats(self) -> BackendStats:
        return BackendStats(waiting=self.waiting, running=self.running, healthy=not self.down)

    def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        return self._generate(req)

    async def _generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        self.seen.append(req)
        if self.down:
            raise BackendUnavailable(f"{self.name} is down")
        async with self._free:
            if self.running >= self.max_running:
                if self.waiting >= self.max_queue:
                    raise Overloaded(f"{self.name} queue is full", retry_after=1.0)
                self.waiting += 1
                try:
                    await self._free.wait_for(lambda: self.running < self.max_running)
                finally:
                    self.waiting -= 1
            self.running += 1
        try:
            words = self.reply.split(" ")
            for i, word in enumerate(words):
                yield Chunk(text=word + (" " if i < len(words) - 1 else ""))
                await self.gate.wait()
            self.served.append(req.request_id)
            yield Chunk(finish_reason=FinishReason.STOP, usage=Usage(3, len(words)))
        finally:
            async with self._free:
                self.running -= 1
                self._free.notify_all()
