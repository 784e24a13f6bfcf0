"""A minimal runner over llama.cpp's low-level API (llama-cpp-python's ctypes binding): tokenize,
decode with per-token logits, and keep the KV cache for one sequence. Used by eval and the round trip."""

from __future__ import annotations

import ctypes
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
        ll = self.ll
        import llama_cpp._logger  # noqa: F401  (installs the log callback quiet_llama controls)

        ll.llama_backend_init()
        mparams = ll.llama_model_default_params()
        self.model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise InvalidModelFile(f"{path}: llama.cpp could not load this model")
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        self.ctx = ll.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            ll.llama_model_free(self.model)
            raise InvalidModelFile(f"{path}: llama.cpp could not create a context (n_ctx={n_ctx})")
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.batch = ll.llama_batch_init(n_batch, 0, 1)

    def close(self) -> None:
        ll = self.ll
        if self.ctx:
            ll.llama_batch_free(self.batch)
            ll.llama_free(self.ctx)
            ll.llama_model_free(self.model)
            self.ctx = self.model = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        raw = text.encode("utf-8")
        buf = (self.ll.llama_token * (len(raw) + 8))()
        n = self.ll.llama_tokenize(self.vocab, raw, len(raw), buf, len(buf), add_bos, False)
        if n < 0:
            raise InvalidModelFile("tokenization overflow")
        return list(buf[:n])

    def bos(self) -> list[int]:
        ll = self.ll
        return [ll.llama_vocab_bos(self.vocab)] if ll.llama_vocab_get_add_bos(self.vocab) else []

    def detokenize(self, tokens: Sequence[int]) -> str:
        out = bytearray()
        buf = ctypes.create_string_buffer(256)
        for token in tokens:
            n = self.ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            out += buf.raw[: max(n, 0)]
        return out.decode("utf-8", errors="replace")

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
