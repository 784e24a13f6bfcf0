"""The Backend protocol: every engine (llama.cpp, vLLM, remote) speaks it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from deeplocal.engine.types import BackendStats, Capabilities, Chunk, GenerationRequest


@runtime_checkable
class Backend(Protocol):
    name: str
    capabilities: Capabilities

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream chunks. Cancelling the iterator frees the sequence at once."""
        ...

    async def embed(self, texts: list[str]) -> list[list[float]]: ...

    def count_tokens(self, req: GenerationRequest) -> int:
        """Prompt tokens this request would use (for quotas and context checks)."""
        ...

    def stats(self) -> BackendStats: ...
