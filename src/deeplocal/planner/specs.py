"""Model architectures as data: a frozen dataclass per model and a table (gpt-fast's ModelArgs pattern).

Only what memory and speed depend on is recorded: layer count, widths, the attention kind (MHA, GQA or
DeepSeek's MLA), the MoE layout, the vocabulary and the native dtype. Parameter counts are derived from
these figures (see `params.py`), never typed in, so a wrong width shows up as a wrong count in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from deeplocal.planner.errors import UnknownModel


class AttentionKind(str, Enum):
    MHA = "mha"  # one K/V head per query head
    GQA = "gqa"  # fewer K/V heads than query heads
    MLA = "mla"  # DeepSeek multi-head latent attention: one compressed latent per token


@dataclass(frozen=True, slots=True)
class Attention:
    kind: AttentionKind
    n_heads: int
    n_kv_heads: int  # MLA: n_heads (used only for tensor-parallel divisibility)
    head_dim: int  # MLA: qk_nope_head_dim + qk_rope_head_dim
    qkv_bias: bool = False
    # MLA only
    kv_lora_rank: int = 0
    q_lora_rank: int = 0  # 0: queries are projected directly (DeepSeek-V2-Lite / Coder-V2-Lite)
    rope_dim: int = 0
    v_head_dim: int = 0


@dataclass(frozen=True, slots=True)
class MoE:
    n_routed: int  # routed experts per MoE layer
    n_active: int  # routed experts chosen per token (top-k)
    n_shared: int  # always-on shared experts
    expert_ffn: int  # intermediate size of one expert
    first_dense_layers: int = 0  # the first k layers use a dense FFN of ModelSpec.ffn


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    n_layers: int
    hidden: int
    ffn: int  # dense FFN intermediate size (the dense layers of a MoE model)
    vocab: int
    attention: Attention
    moe: MoE | None = None
    tied_embeddings: bool = False
    native_dtype: str = "bf16"
    max_context: int = 32768
    hf_repo: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def moe_layers(self) -> int:
        return 0 if self.moe is None else self.n_layers - self.moe.first_dense_layers

    @property
    def dense_layers(self) -> int:
        return self.n_layers - self.moe_layers


def _gqa(n_heads: int, n_kv: int, head_dim: int = 128, *, bias: bool = False) -> Attention:
    kind = AttentionKind.MHA if n_heads == n_kv else AttentionKind.GQA
    return Attention(kind, n_heads, n_kv, head_dim, qkv_bias=bias)


def _mla(n_heads: int, *, kv_lora: int, q_lora: int, rope: int = 64, nope: int = 128, v: int = 128) -> Attention:
    return Attention(AttentionKind.MLA, n_heads, n_heads, nope + rope, kv_lora_rank=kv_lora,
                     q_lora_rank=q_lora, rope_dim=rope, v_head_dim=v)


_QWEN_V = 152064
_LLAMA3_V = 128256

# Widths from each model's config.json on Hugging Face.
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("deepseek-v3", 61, 7168, 18432, 129280, _mla(128, kv_lora=512, q_lora=1536),
              MoE(256, 8, 1, 2048, first_dense_layers=3), native_dtype="fp8", max_context=163840,
              hf_repo="deepseek-ai/DeepSeek-V3", aliases=("deepseek-v3-0324", "v3")),
    ModelSpec("deepseek-r1", 61, 7168, 18432, 129280, _mla(128, kv_lora=512, q_lora=1536),
              MoE(256, 8, 1, 2048, first_dense_layers=3), native_dtype="fp8", max_context=163840,
              hf_repo="deepseek-ai/DeepSeek-R1", aliases=("deepseek-r1-0528", "r1")),
    ModelSpec("deepseek-coder-v2-lite", 27, 2048, 10944, 102400, _mla(16, kv_lora=512, q_lora=0),
              MoE(64, 6, 2, 1408, first_dense_layers=1), max_context=163840,
              hf_repo="deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", aliases=("coder-v2-lite",)),
    ModelSpec("deepseek-r1-distill-qwen-1.5b", 28, 1536, 8960, 151936, _gqa(12, 2, bias=True),
              max_context=131072, hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
              aliases=("r1-distill-qwen-1.5b",)),
    ModelSpec("deepseek-r1-distill-qwen-7b", 28, 3584, 18944, _QWEN_V, _gqa(28, 4, bias=True),
              max_context=131072, hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
              aliases=("r1-distill-qwen-7b",)),
    ModelSpec("deepseek-r1-distill-qwen-14b", 48, 5120, 13824, _QWEN_V, _gqa(40, 8, bias=True),
              max_context=131072, hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
              aliases=("r1-distill-qwen-14b",)),
    ModelSpec("deepseek-r1-distill-qwen-32b", 64, 5120, 27648, _QWEN_V, _gqa(40, 8, bias=True),
              max_context=131072, hf_repo="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
              aliases=("r1-distill-qwen-32b",)),
    ModelSpec("deepseek-r1-distill-llama-8b", 32, 4096, 14336, _LLAMA3_V, _gqa(32, 8),
              max_context=131072, hf_repo="deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
              aliases=("r1-distill-llama-8b",)),
    ModelSpec("deepseek-r1-distill-llama-70b", 80, 8192, 28672, _LLAMA3_V, _gqa(64, 8),
              max_context=131072, hf_repo="deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
              aliases=("r1-distill-llama-70b",)),
    ModelSpec("deepseek-llm-7b", 30, 4096, 11008, 102400, _gqa(32, 32), max_context=4096,
              hf_repo="deepseek-ai/deepseek-llm-7b-chat", aliases=("deepseek-llm-7b-chat",)),
    ModelSpec("deepseek-llm-67b", 95, 8192, 22016, 102400, _gqa(64, 8), max_context=4096,
              hf_repo="deepseek-ai/deepseek-llm-67b-chat", aliases=("deepseek-llm-67b-chat",)),
    ModelSpec("qwen2.5-0.5b", 24, 896, 4864, 151936, _gqa(14, 2, 64, bias=True), tied_embeddings=True,
              hf_repo="Qwen/Qwen2.5-0.5B-Instruct"),
    ModelSpec("qwen2.5-1.5b", 28, 1536, 8960, 151936, _gqa(12, 2, bias=True), tied_embeddings=True,
              hf_repo="Qwen/Qwen2.5-1.5B-Instruct"),
    ModelSpec("qwen2.5-3b", 36, 2048, 11008, 151936, _gqa(16, 2, bias=True), tied_embeddings=True,
              hf_repo="Qwen/Qwen2.5-3B-Instruct"),
    ModelSpec("qwen2.5-7b", 28, 3584, 18944, _QWEN_V, _gqa(28, 4, bias=True), hf_repo="Qwen/Qwen2.5-7B-Instruct"),
    ModelSpec("qwen2.5-14b", 48, 5120, 13824, _QWEN_V, _gqa(40, 8, bias=True),
              hf_repo="Qwen/Qwen2.5-14B-Instruct"),
    ModelSpec("qwen2.5-32b", 64, 5120, 27648, _QWEN_V, _gqa(40, 8, bias=True),
              hf_repo="Qwen/Qwen2.5-32B-Instruct"),
    ModelSpec("qwen2.5-72b", 80, 8192, 29568, _QWEN_V, _gqa(64, 8, bias=True),
              hf_repo="Qwen/Qwen2.5-72B-Instruct"),
    ModelSpec("llama-3.2-1b", 16, 2048, 8192, _LLAMA3_V, _gqa(32, 8, 64), tied_embeddings=True,
              max_context=131072, hf_repo="meta-llama/Llama-3.2-1B-Instruct"),
    ModelSpec("llama-3.2-3b", 28, 3072, 8192, _LLAMA3_V, _gqa(24, 8), tied_embeddings=True,
              max_context=131072, hf_repo="meta-llama/Llama-3.2-3B-Instruct"),
    ModelSpec("llama-3.1-8b", 32, 4096, 14336, _LLAMA3_V, _gqa(32, 8), max_context=131072,
              hf_repo="meta-llama/Llama-3.1-8B-Instruct", aliases=("llama-3-8b",)),
    ModelSpec("llama-3.3-70b", 80, 8192, 28672, _LLAMA3_V, _gqa(64, 8), max_context=131072,
              hf_repo="meta-llama/Llama-3.3-70B-Instruct", aliases=("llama-3.1-70b", "llama-3-70b")),
    ModelSpec("llama-3.1-405b", 126, 16384, 53248, _LLAMA3_V, _gqa(128, 8), max_context=131072,
              hf_repo="meta-llama/Llama-3.1-405B-Instruct"),
    ModelSpec("smollm2-135m", 30, 576, 1536, 49152, _gqa(9, 3, 64), tied_embeddings=True, max_context=8192,
              hf_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
              aliases=("smollm2-135m-instruct", "smollm2", "bundled", "default")),
)


def model_names() -> tuple[str, ...]:
    return tuple(m.name for m in MODELS)


def model_from_name(name: str) -> ModelSpec:
    """Look a model up by name or alias, case-insensitively; an `org/` prefix is ignored."""
    key = name.strip().lower().rsplit("/", 1)[-1].removesuffix("-instruct").removesuffix("-chat")
    for spec in MODELS:
        names = {spec.name, *spec.aliases, spec.hf_repo.lower().rsplit("/", 1)[-1]}
        names |= {n.removesuffix("-instruct").removesuffix("-chat") for n in names}
        if key in names or name.strip().lower() in names:
            return spec
    raise UnknownModel(f"unknown model {name!r}; known: {', '.join(model_names())} "
                       "(or pass --from-config config.json / model.gguf)", param="model")
