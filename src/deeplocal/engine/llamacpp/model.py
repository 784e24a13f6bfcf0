"""Load a GGUF through llama.cpp's C API: the model, its vocabulary and metadata."""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as lc

from deeplocal.engine.errors import BackendUnavailable, InvalidRequest

_INIT_LOCK = threading.Lock()
FLASH_ATTN = lc.LLAMA_FLASH_ATTN_TYPE_AUTO


@lc.llama_log_callback
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp's own log goes nowhere; our logs say what matters."""


def init_llama_backend() -> None:
    """Idempotent process-wide llama.cpp initialisation (llama_backend_init is itself idempotent)."""
    with _INIT_LOCK:
        lc.llama_log_set(_quiet_log, None)
        lc.llama_backend_init()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: Path
    n_ctx_train: int
    n_embd: int
    n_vocab: int
    n_params: int
    size_bytes: int
    description: str
    chat_template: str | None
    architecture: str


class LlamaModel:
    """Owns a llama_model pointer. Tokenisation here is read-only and safe from any thread."""

    def __init__(self, path: Path, *, n_gpu_layers: int = 0):
        if not path.is_file():
            raise InvalidRequest(f"model file not found: {path}")
        init_llama_backend()
        params = lc.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        self._ptr = lc.llama_model_load_from_file(str(path).encode(), params)
        if not self._ptr:
            raise BackendUnavailable(f"llama.cpp could not load {path} (not a valid GGUF model?)")
        self.vocab = lc.llama_model_get_vocab(self._ptr)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.info = ModelInfo(
            path=path,
            n_ctx_train=lc.llama_model_n_ctx_train(self._ptr),
            n_embd=lc.llama_model_n_embd(self._ptr),
            n_vocab=self.n_vocab,
            n_params=lc.llama_model_n_params(self._ptr),
            size_bytes=lc.llama_model_size(self._ptr),
            description=self._desc(),
            chat_template=self.meta("tokenizer.chat_template"),
            architecture=self.meta("general.architecture") or "unknown",
        )
        self.bos_id = lc.llama_vocab_bos(self.vocab)
        self.eos_id = lc.llama_vocab_eos(self.vocab)

    @property
    def ptr(self):
        return self._ptr

    @property
    def reusable_prefixes(self) -> bool:
        """Can a prefix of one sequence's KV serve another? Not with sliding-window attention
        (old cells are dropped as a sequence grows) or recurrent state (no cut at a position)."""
        return (lc.llama_model_n_swa(self._ptr) == 0 and not lc.llama_model_is_recurrent(self._ptr)
                and not lc.llama_model_is_hybrid(self._ptr))

    def _desc(self) -> str:
        buf = ctypes.create_string_buffer(256)
        lc.llama_model_desc(self._ptr, buf, 256)
        return buf.value.decode("utf-8", "replace")

    def meta(self, key: str) -> str | None:
        size = 1 << 16
        while True:
            buf = ctypes.create_string_buffer(size)
            n = lc.llama_model_meta_val_str(self._ptr, key.encode(), buf, size)
            if n < 0:
                return None
            if n < size:
                return buf.value.decode("utf-8", "replace")
            size = n + 1

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 16
        arr = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self.vocab, data, len(data), arr, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            arr = (lc.llama_token * cap)()
            n = lc.llama_tokenize(self.vocab, data, len(data), arr, cap, add_special, parse_special)
        return list(arr[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def token_text(self, token: int) -> str:
        return self.piece(token).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        return bool(lc.llama_vocab_is_eog(self.vocab, token))

    def special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.piece(token, special=True).decode("utf-8", "replace")

    def close(self) -> None:
        if self._ptr:
            lc.llama_model_free(self._ptr)
            self._ptr = None


def new_context(model: LlamaModel, *, n_ctx: int, n_batch: int, n_seq_max: int, n_threads: int,
                embeddings: bool = False, unified: bool = True):
    """A llama_context for n_seq_max sequences: one KV pool shared by all (`unified`), or one stream
    of n_ctx / n_seq_max cells per sequence."""
    params = lc.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = n_batch
    params.n_ubatch = n_batch
    params.n_seq_max = n_seq_max
    params.n_threads = n_threads
    params.n_threads_batch = n_threads
    params.kv_unified = unified
    params.flash_attn_type = FLASH_ATTN
    params.no_perf = True
    if embeddings:
        params.embeddings = True
        params.pooling_type = lc.LLAMA_POOLING_TYPE_MEAN
    ctx = lc.llama_init_from_model(model.ptr, params)
    if not ctx:
        raise BackendUnavailable("llama.cpp could not create a context (out of memory?)")
    return ctx
