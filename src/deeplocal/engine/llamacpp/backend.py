"""LlamaCppBackend: the Backend protocol over the in-process continuous-batching engine."""

from __future__ import annotations

import asyncio
import ctypes
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import llama_cpp as lc

from deeplocal.config import EngineSettings
from deeplocal.engine.chat_template import ChatTemplate
from deeplocal.engine.errors import BackendUnavailable, ContextTooLong, InvalidRequest
from deeplocal.engine.llamacpp.engine import LlamaEngine
from deeplocal.engine.llamacpp.model import LlamaModel, new_context
from deeplocal.engine.llamacpp.sequence import Sequence
from deeplocal.engine.types import BackendStats, Capabilities, Chunk, GenerationRequest

EMBED_CTX = 512


class LlamaCppBackend:
    capabilities = Capabilities(chat=True, completion=True, embeddings=True, json_schema=True,
                                logprobs=True, tools=True)

    def __init__(self, name: str, path: Path, settings: EngineSettings):
        self.name = name
        self.path = Path(path)
        self.settings = settings
        self.model: LlamaModel | None = None
        self.engine: LlamaEngine | None = None
        self.template: ChatTemplate | None = None
        self._embed_ctx = None

    @classmethod
    def from_config(cls, name: str, path: Path, settings) -> LlamaCppBackend:
        return cls(name, path, settings.engine)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        s = self.settings
        self.model = LlamaModel(self.path, n_gpu_layers=s.n_gpu_layers)
        self.template = ChatTemplate(self.model.info.chat_template,
                                     bos_token=self.model.special_text(self.model.bos_id),
                                     eos_token=self.model.special_text(self.model.eos_id))
        self.engine = LlamaEngine(self.model, n_ctx=s.n_ctx, n_threads=s.n_threads,
                                  max_num_seqs=s.max_num_seqs,
                                  max_num_batched_tokens=max(s.max_num_batched_tokens, 16),
                                  max_queue=s.max_queue, prefix_cache=s.prefix_cache,
                                  kv_unified=s.kv_unified)
        self.engine.start()

    async def stop(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            await asyncio.to_thread(engine.stop)
        if self._embed_ctx is not None:
            lc.llama_free(self._embed_ctx)
            self._embed_ctx = None
        if self.model is not None:
            self.model.close()
            self.model = None

    @property
    def reasoning_template(self) -> bool:
        """The chat template speaks DeepSeek-R1's <think> format."""
        return self.template is not None and "<think>" in self.template.source

    @property
    def n_ctx(self) -> int:
        return self.engine.n_ctx if self.engine else self.settings.n_ctx

    # -- prompts -------------------------------------------------------------------------------
    def render_prompt(self, req: GenerationRequest) -> str:
        if req.messages is not None:
            return self._require_model_template().render(req.messages, tools=req.tools,
                                                         add_generation_prompt=req.add_generation_prompt)
        return req.prompt or ""

    def _require_model_template(self) -> ChatTemplate:
        if self.template is None:
            raise BackendUnavailable(f"model {self.name} is not loaded", retry_after=5)
        return self.template

    def tokenize_request(self, req: GenerationRequest) -> list[int]:
        model = self._require_model()
        bad_bias = [t for t, _ in req.sampling.logit_bias if not 0 <= t < model.n_vocab]
        if bad_bias:
            raise InvalidRequest(f"logit_bias names token {bad_bias[0]}, outside the vocabulary "
                                 f"(0..{model.n_vocab - 1})", param="logit_bias")
        if req.prompt_token_ids is not None:
            bad = [t for t in req.prompt_token_ids if not 0 <= t < model.n_vocab]
            if bad:
                raise InvalidRequest(f"token id {bad[0]} is outside the vocabulary (0..{model.n_vocab - 1})",
                                     param="prompt")
            return list(req.prompt_token_ids)
        # Chat templates write their own special tokens; plain prompts get the model's BOS.
        return model.tokenize(self.render_prompt(req), add_special=req.messages is None)

    def count_tokens(self, req: GenerationRequest) -> int:
        return len(self.tokenize_request(req))

    def _require_model(self) -> LlamaModel:
        if self.model is None:
            raise BackendUnavailable(f"model {self.name} is not loaded", retry_after=5)
        return self.model

    def opens_thinking(self, req: GenerationRequest) -> bool:
        """Does the rendered prompt already open a <think> block (DeepSeek-R1 templates)?"""
        return req.messages is not None and self.render_prompt(req).rstrip().endswith("<think>")

    # -- generation ----------------------------------------------------------------------------
    async def generate(self, req: GenerationRequest) -> AsyncIterator[Chunk]:
        engine = self.engine
        if engine is None:
            raise BackendUnavailable(f"model {self.name} is not loaded", retry_after=5)
        prompt = self.tokenize_request(req)
        if not prompt:
            raise InvalidRequest("the prompt is empty", param="prompt")
        room = engine.n_ctx - len(prompt)
        max_tokens = req.sampling.max_tokens
        if room <= 0 or (max_tokens is not None and max_tokens > room):
            raise ContextTooLong(
                f"this model's context is {engine.n_ctx} tokens; the prompt has {len(prompt)} tokens"
                + (f" and max_tokens asks for {max_tokens} more" if max_tokens else ""),
                param="messages" if req.messages is not None else "prompt")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()

        def emit(item: Chunk | BaseException) -> None:   # runs on the engine thread
            engine.outbox.put(loop, queue, item)

        seq = Sequence(request_id=req.request_id, prompt=prompt, params=req.sampling,
                       max_new=max_tokens if max_tokens is not None else room, emit=emit,
                       on_admitted=req.on_admitted)
        engine.submit(seq)
        done = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if item.finish_reason is not None:
                    done = True
                yield item
                if done:
                    return
        finally:
            if not done:
                engine.cancel(seq)

    # -- embeddings ----------------------------------------------------------------------------
    async def embed(self, texts: list[str]) -> list[list[float]]:
        engine = self.engine
        if engine is None:
            raise BackendUnavailable(f"model {self.name} is not loaded", retry_after=5)
        model = self._require_model()
        token_lists = [model.tokenize(t, add_special=True) for t in texts]
        for i, toks in enumerate(token_lists):
            if not toks:
                raise InvalidRequest(f"input[{i}] is empty", param="input")
            if len(toks) > EMBED_CTX:
                raise ContextTooLong(f"input[{i}] has {len(toks)} tokens; the embedding limit is {EMBED_CTX}",
                                     param="input")
        return await asyncio.wrap_future(engine.run_job(lambda: [self._embed_one(t) for t in token_lists]))

    def _embed_one(self, tokens: list[int]) -> list[float]:
        model = self._require_model()
        if self._embed_ctx is None:
            self._embed_ctx = new_context(model, n_ctx=EMBED_CTX, n_batch=EMBED_CTX, n_seq_max=1,
                                          n_threads=self.settings.n_threads, embeddings=True)
        ctx = self._embed_ctx
        lc.llama_memory_clear(lc.llama_get_memory(ctx), True)
        batch = lc.llama_batch_init(len(tokens), 0, 1)
        try:
            for i, tok in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, i, 1
                batch.seq_id[i][0], batch.logits[i] = 0, 1
            batch.n_tokens = len(tokens)
            if lc.llama_decode(ctx, batch) != 0:
                raise BackendUnavailable("llama.cpp failed to compute the embedding")
            ptr = lc.llama_get_embeddings_seq(ctx, 0)
            vec = [float(x) for x in ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float))[: model.info.n_embd]]
        finally:
            lc.llama_batch_free(batch)
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def stats(self) -> BackendStats:
        if self.engine is None:
            return BackendStats(healthy=False)
        return self.engine.stats()


def new_request_id() -> str:
    return uuid.uuid4().hex
