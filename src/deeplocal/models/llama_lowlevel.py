"""A minimal runner over llama.cpp's low-level API (llama-cpp-python's ctypes binding): tokenize,
decode with per-token logits, and keep the KV cache for one sequence. Used by eval and the round trip."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np

from deeplocal.models.errors import BackendMissing, InvalidModelFile


def import_llama():
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - llama-cpp-python is a base dependency
        raise BackendMissing("llama-cpp-python is not installed (pip install llama-cpp-python)") from exc
    return llama_cpp


@contextmanager
def quiet_llama(verbose: bool = False) -> Iterator[None]:
    """Silence llama.cpp's stderr log (routed through llama-cpp-python's logger) for the block."""
    logger = logging.getLogger("llama-cpp-python")
    before = logger.level
    logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


class LlamaRunner:
    """One model, one context, one sequence (seq 0)."""

    def __init__(self, path: Path, *, n_ctx: int = 512, n_batch: int = 512, n_threads: int = 1):
        self.ll = import_llama()
        # The engine's loader and context factory: one place that knows how to open a GGUF.
        from deeplocal.engine.llamacpp.model import LlamaModel, new_context
        from deeplocal.errors import DeeplocalError

        try:
            self.llm = LlamaModel(Path(path))
        except DeeplocalError as exc:
            raise InvalidModelFile(f"{path}: llama.cpp could not load this model ({exc.message})") from exc
        try:
            self.ctx = new_context(self.llm, n_ctx=n_ctx, n_batch=n_batch, n_seq_max=1, n_threads=n_threads,
                                   unified=False)
        except DeeplocalError as exc:
            self.llm.close()
            raise InvalidModelFile(f"{path}: llama.cpp could not create a context (n_ctx={n_ctx})") from exc
        self.vocab = self.llm.vocab
        self.n_vocab = self.llm.n_vocab
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.batch = self.ll.llama_batch_init(n_batch, 0, 1)

    def close(self) -> None:
        if self.ctx:
            self.ll.llama_batch_free(self.batch)
            self.ll.llama_free(self.ctx)
            self.llm.close()
            self.ctx = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        return self.llm.tokenize(text, add_special=add_bos, parse_special=False)

    def bos(self) -> list[int]:
        ll = self.ll
        return [ll.llama_vocab_bos(self.vocab)] if ll.llama_vocab_get_add_bos(self.vocab) else []

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.llm.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def reset(self, keep: int = 0) -> None:
        """Forget the KV cache of seq 0 from position `keep` on."""
        mem = self.ll.llama_get_memory(self.ctx)
        if keep == 0:
            self.ll.llama_memory_clear(mem, True)
        else:
            self.ll.llama_memory_seq_rm(mem, 0, keep, -1)

    def decode(self, tokens: Sequence[int], *, start: int, all_logits: bool = False) -> np.ndarray:
        """Decode tokens at positions start.. ; return logits [n, vocab] (all) or [1, vocab] (last)."""
        outputs = []
        for offset in range(0, len(tokens), self.n_batch):
            part = tokens[offset: offset + self.n_batch]
            b = self.batch
            b.n_tokens = len(part)
            last_part = offset + self.n_batch >= len(tokens)
            for i, token in enumerate(part):
                b.token[i] = token
                b.pos[i] = start + offset + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = all_logits or (last_part and i == len(part) - 1)
            if self.ll.llama_decode(self.ctx, b) != 0:
                raise InvalidModelFile("llama_decode failed (context full?)")
            n_out = len(part) if all_logits else (1 if last_part else 0)
            if n_out:
                ptr = self.ll.llama_get_logits(self.ctx)
                outputs.append(np.ctypeslib.as_array(ptr, shape=(n_out, self.n_vocab)).copy())
        return np.concatenate(outputs) if outputs else np.empty((0, self.n_vocab), np.float32)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
