"""`VllmBackend`: vLLM behind deeplocal. Supervised `vllm serve` children on private loopback ports;
generation goes through `RemoteBackend` (the same streaming and error mapping as any upstream)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from deeplocal.engine.remote import RemoteBackend
from deeplocal.engine.types import BackendStats, Capabilities, Chunk, GenerationRequest
from deeplocal.engine.vllm.args import check_settings
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.engine.vllm.replicas import Replica, device_groups, no_replica_ready, pick_replica, sum_stats


class VllmBackend:
    """One model served by `settings.replicas` vLLM children; requests go to the least loaded."""

    def __init__(self, name: str, model: str | Path, vllm: VllmSettings | None = None) -> None:
        """`name`: the model id clients use; `model`: a local path or Hugging Face id for vLLM;
        `vllm`: the `vllm:` settings section. Bad settings raise `VllmSettingsError` here."""
        self.vllm = vllm or VllmSettings()
        self.model = self.vllm.model or str(model)
        self.served_name = self.vllm.served_name or name
        check_settings(self.vllm)
        self.name = f"vllm:{self.served_name}"
        self.capabilities = Capabilities(chat=True, completion=True, embeddings=False,
                                         lora=self.vllm.enable_lora, json_schema=False, logprobs=True,
                                         tools=True)
        self._api_key = secrets.token_urlsafe(24)   # the children's /v1 answers only to us
        self._counter = RemoteBackend(self.name, "http://127.0.0.1", model=self.served_name)  # no I/O
        self._replicas: list[Replica] = []
        self._turn = itertools.count()

    @classmethod
    def from_config(cls, name: str, path: str | Path, settings: Any) -> VllmBackend:
        """The registry's door (as the llama.cpp backend's): `settings` is the app's Settings."""
        return cls(name, path, getattr(settings, "vllm", None))

    @classmethod
    def from_model_config(cls, model_config: Any, settings: Any) -> VllmBackend:
        """From a `models:` entry (source, id) and the app's Settings."""
        return cls(model_config.id or model_config.source, model_config.source, getattr(settings, "vllm", None))

    @property
    def replicas(self) -> list[Replica]:
        return list(self._replicas)

    async def start(self) -> None:
        """Start every replica (in parallel) and return when all are healthy; on failure stop them all."""
        if self._replicas:
            return
        self._replicas = [
            Replica(i, self.vllm, model=self.model, served_name=self.served_name, api_key=self._api_key,
                    devices=devices)
            for i, devices in enumerate(device_groups(self.vllm))
        ]
        results = await asyncio.gather(*(r.start() for r in self._replicas), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self.stop()
            raise failure

    async def stop(self) -> None:
        replicas, self._replicas = self._replicas, []
        await asyncio.gather(*(r.stop() for r in replicas), return_exceptions=True)

    def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        return self._generate(req)

    async def _generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        async for chunk in self._ready_replica().generate(req):
            yield chunk

    def _ready_replica(self) -> Replica:
        index = pick_replica([r.load() for r in self._replicas], turn=next(self._turn))
        if index is None:
            raise no_replica_ready(self._replicas)
        return self._replicas[index]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Embeddings from vLLM (an embedding model served with vLLM's pooling runner)."""
        return await self._ready_replica().remotes[self.served_name].embed(texts)

    def count_tokens(self, req: GenerationRequest) -> int:
        return self._counter.count_tokens(req)

    def stats(self) -> BackendStats:
        return sum_stats([r.stats() for r in self._replicas])
