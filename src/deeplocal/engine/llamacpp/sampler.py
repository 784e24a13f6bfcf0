"""Per-sequence sampler chains (llama.cpp samplers) and logprobs from the raw logits."""

from __future__ import annotations

import ctypes
import random

import llama_cpp as lc
import numpy as np

from deeplocal.engine.errors import InvalidRequest
from deeplocal.engine.llamacpp.model import LlamaModel
from deeplocal.engine.types import SamplingParams, TokenLogprob

PENALTY_LAST_N = 64


class SamplerChain:
    """Owns a llama_sampler chain. Order: grammar, bias, penalties, top-k, top-p, min-p, temperature, draw."""

    def __init__(self, model: LlamaModel, params: SamplingParams):
        self._ptr = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self.seed = params.seed if params.seed is not None else random.getrandbits(32)
        add = lambda s: lc.llama_sampler_chain_add(self._ptr, s)
        if params.grammar:
            grammar = lc.llama_sampler_init_grammar(model.vocab, params.grammar.encode(), b"root")
            if not grammar:
                self.close()
                raise InvalidRequest("the output constraint could not be compiled into a grammar",
                                     param="response_format")
            add(grammar)
        if params.logit_bias:
            arr = (lc.llama_logit_bias * len(params.logit_bias))()
            for i, (tok, bias) in enumerate(params.logit_bias):
                arr[i].token, arr[i].bias = tok, bias
            add(lc.llama_sampler_init_logit_bias(model.n_vocab, len(params.logit_bias), arr))
        if params.repetition_penalty != 1.0 or params.frequency_penalty or params.presence_penalty:
            add(lc.llama_sampler_init_penalties(model.n_vocab, PENALTY_LAST_N, params.repetition_penalty,
                                                params.frequency_penalty, params.presence_penalty))
        if params.temperature <= 0.0:
            add(lc.llama_sampler_init_greedy())
            return
        if params.top_k > 0:
            add(lc.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            add(lc.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            add(lc.llama_sampler_init_min_p(params.min_p, 1))
        add(lc.llama_sampler_init_temp(params.temperature))
        add(lc.llama_sampler_init_dist(self.seed))

    def sample(self, ctx, batch_index: int) -> int:
        """Sample (and accept) the next token from the logits of `batch_index` in the last decode."""
        return lc.llama_sampler_sample(self._ptr, ctx, batch_index)

    def accept(self, token: int) -> None:
        """Feed a token that was not sampled here (a replayed token after preemption)."""
        lc.llama_sampler_accept(self._ptr, token)

    def reset(self) -> None:
        lc.llama_sampler_reset(self._ptr)

    def close(self) -> None:
        if self._ptr:
            lc.llama_sampler_free(self._ptr)
            self._ptr = None


def token_logprobs(model: LlamaModel, ctx, batch_index: int, token: int, top_n: int) -> TokenLogprob:
    """Log-probability of `token` under the model's distribution, and the `top_n` alternatives."""
    ptr = lc.llama_get_logits_ith(ctx, batch_index)
    logits = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(model.n_vocab,))
    logits = logits.astype(np.float64)
    peak = logits.max()
    logz = peak + np.log(np.exp(logits - peak).sum())
    top: tuple[tuple[str, float, tuple[int, ...]], ...] = ()
    if top_n > 0:
        idx = np.argpartition(-logits, top_n)[:top_n]
        idx = idx[np.argsort(-logits[idx])]
        top = tuple((model.token_text(int(i)), float(logits[i] - logz), tuple(model.piece(int(i))))
                    for i in idx)
    piece = model.piece(token)
    return TokenLogprob(token=piece.decode("utf-8", "replace"), logprob=float(logits[token] - logz),
                        bytes=tuple(piece), top=top)
