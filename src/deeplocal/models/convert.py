"""Hugging Face safetensors -> GGUF (F32/F16/BF16) for llama.cpp, for the llama and qwen2 architectures
(DeepSeek-R1-Distill-Llama / -Qwen use them). Built on the `gguf` package: writer, tensor name map,
SpecialVocab. Tensors stream one at a time, so memory stays near the largest tensor."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deeplocal.models.errors import InvalidModelFile, UnsupportedArchitecture
from deeplocal.models.fileio import disk_full, is_disk_full
from deeplocal.models.hf_meta import read_config, read_safetensors_header
from deeplocal.models.hf_vocab import add_tokenizer
from deeplocal.models.safetensors_io import f32_to_bf16_bits, iter_tensors

ARCHS = {"llama": "LLAMA", "qwen2": "QWEN2", "mistral": "LLAMA"}
OUT_TYPES = ("F32", "F16", "BF16")
SKIP = ("rotary_emb.inv_freq",)


@dataclass(frozen=True, slots=True)
class Hparams:
    arch: str  # GGUF architecture name
    n_layers: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int
    vocab_size: int
    rms_eps: float
    rope_theta: float
    tied: bool
    rope_scaling: dict | None

    @classmethod
    def from_config(cls, config: dict) -> Hparams:
        model_type = config.get("model_type")
        if model_type not in ARCHS:
            raise UnsupportedArchitecture(
                f"architecture {model_type!r} ({(config.get('architectures') or ['?'])[0]}) is not supported "
                f"by the converter; supported: {', '.join(sorted(ARCHS))}")
        n_head = config["num_attention_heads"]
        return cls(
            arch=ARCHS[model_type].lower(),
            n_layers=config["num_hidden_layers"], n_embd=config["hidden_size"],
            n_ff=config["intermediate_size"], n_head=n_head,
            n_head_kv=config.get("num_key_value_heads") or n_head,
            head_dim=config.get("head_dim") or config["hidden_size"] // n_head,
            n_ctx=config.get("max_position_embeddings", 4096), vocab_size=config["vocab_size"],
            rms_eps=config.get("rms_norm_eps", 1e-6), rope_theta=rope_theta(config),
            tied=bool(config.get("tie_word_embeddings", False)), rope_scaling=rope_scaling(config),
        )


def rope_theta(config: dict) -> float:
    """`rope_theta` at the top level (transformers 4) or inside `rope_parameters` (transformers 5)."""
    params = config.get("rope_parameters") or {}
    return float(config.get("rope_theta") or params.get("rope_theta") or 10000.0)


def rope_scaling(config: dict) -> dict | None:
    params = config.get("rope_scaling") or config.get("rope_parameters") or {}
    kind = params.get("rope_type", params.get("type"))
    return params if kind and kind != "default" else None


def permute_rope(weight: np.ndarray, n_head: int) -> np.ndarray:
    """HF llama's q/k rows are in 'rotate half' order; llama.cpp's llama wants interleaved pairs."""
    rows = weight.shape[0]
    return (weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def llama3_rope_freqs(hp: Hparams) -> np.ndarray | None:
    """Per-dimension frequency divisors for rope_type 'llama3' (Llama 3.1+ long context)."""
    rs = hp.rope_scaling or {}
    if rs.get("rope_type", rs.get("type")) != "llama3":
        return None
    factor, low, high = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old_ctx = rs.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / (hp.rope_theta ** (np.arange(0, hp.head_dim, 2, dtype=np.float64) / hp.head_dim))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class TensorJob:
    name: str  # GGUF name
    shape: tuple[int, ...]
    load: Callable[[], np.ndarray]  # float32 (or float16) data, already permuted


def plan_tensors(folder: Path, hp: Hparams) -> list[TensorJob]:
    import gguf

    tmap = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, hp.arch.upper()), hp.n_layers)
    jobs = []
    for file in sorted(folder.glob("*.safetensors")):
        header = read_safetensors_header(file)
        for hf_name, spec in header.items():
            if hf_name == "__metadata__" or hf_name.endswith(SKIP):
                continue
            if hf_name == "lm_head.weight" and hp.tied:
                continue
            name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise UnsupportedArchitecture(f"{file.name}: tensor {hf_name!r} has no GGUF name for {hp.arch}")
            heads = None
            if hp.arch == "llama" and name.endswith("attn_q.weight"):
                heads = hp.n_head
            elif hp.arch == "llama" and name.endswith("attn_k.weight"):
                heads = hp.n_head_kv
            jobs.append(TensorJob(name, tuple(spec["shape"]), _loader(file, hf_name, heads)))
    if not any(j.name == "output.weight" for j in jobs) and not hp.tied:
        raise InvalidModelFile(f"{folder}: no lm_head.weight and tie_word_embeddings is false")
    freqs = llama3_rope_freqs(hp)
    if freqs is not None:
        jobs.append(TensorJob("rope_freqs.weight", freqs.shape, lambda: freqs))
    return jobs


def _loader(file: Path, hf_name: str, heads: int | None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        for name, array in iter_tensors(file):
            if name == hf_name:
                return permute_rope(array, heads) if heads else array
        raise InvalidModelFile(f"{file}: tensor {hf_name} vanished")
    return load


def _out_array(data: np.ndarray, out_type: str):
    """(array to write, ggml type) for one tensor: 1-D tensors stay F32, as llama.cpp expects."""
    import gguf

    if data.ndim <= 1 or out_type == "F32":
        return np.ascontiguousarray(data, dtype=np.float32), gguf.GGMLQuantizationType.F32
    if out_type == "F16":
        return np.ascontiguousarray(data, dtype=np.float16), gguf.GGMLQuantizationType.F16
    return f32_to_bf16_bits(data.astype(np.float32)), gguf.GGMLQuantizationType.BF16


def _write_metadata(writer, hp: Hparams, *, name: str, out_type: str) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(hp.n_ctx)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layers)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
    writer.add_head_count_kv(hp.n_head_kv)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.head_dim != hp.n_embd // hp.n_head:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    writer.add_vocab_size(hp.vocab_size)
    writer.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                          "BF16": gguf.LlamaFileType.MOSTLY_BF16}[out_type])
    rs = hp.rope_scaling or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rs["factor"])
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(rs["factor"])
        writer.add_rope_scaling_orig_ctx_len(rs["original_max_position_embeddings"])


def convert_folder(folder: Path, out: Path, *, out_type: str = "F16", pre: str | None = None,
                   name: str | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """Write `out` (a GGUF) from a Hugging Face folder. The caller owns cleanup of `out` on failure."""
    import gguf

    out_type = out_type.upper()
    if out_type not in OUT_TYPES:
        raise InvalidModelFile(f"output type {out_type} not supported; choose {', '.join(OUT_TYPES)}")
    config = read_config(folder)
    hp = Hparams.from_config(config)
    jobs = plan_tensors(folder, hp)
    writer = gguf.GGUFWriter(str(out), hp.arch)
    try:
        _write_metadata(writer, hp, name=name or folder.name, out_type=out_type)
        add_tokenizer(writer, folder, vocab_size=hp.vocab_size, pre=pre)
        for job in jobs:
            itemsize = 4 if len(job.shape) <= 1 or out_type == "F32" else 2
            raw = {4: gguf.GGMLQuantizationType.F32, 2: getattr(gguf.GGMLQuantizationType, out_type)}[itemsize]
            writer.add_tensor_info(job.name, job.shape, np.dtype(np.float32 if itemsize == 4 else np.float16),
                                   math.prod(job.shape) * itemsize, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for job in jobs:
            array, _ = _out_array(job.load(), out_type)
            writer.write_tensor_data(array)
            if progress:
                progress(array.nbytes)
    except OSError as exc:
        if is_disk_full(exc, out):
            raise disk_full(exc, out) from exc
        raise
    finally:
        writer.close()
    return out


def convert_model(store, source: str, *, out_type: str = "F16", model_id: str | None = None,
                  pre: str | None = None, replace: bool = False,
                  progress: Callable[[int], None] | None = None):
    """Convert a safetensors model (store id or folder) into a new GGUF store entry `<id>-<type>`."""
    from deeplocal.models.fileio import sha256_file
    from deeplocal.models.importer import gguf_manifest
    from deeplocal.models.manifest import check_id, slugify
    from deeplocal.models.resolve import resolve_model

    src = resolve_model(source, store_dir=store.root)
    if src.format != "safetensors":
        raise InvalidModelFile(f"{src.id} is already {src.format}; convert takes a Hugging Face folder")
    model_id = check_id(model_id or slugify(f"{src.id}-{out_type}"))
    with store.staging() as staged:
        out = staged / f"{model_id}.gguf"
        convert_folder(src.path, out, out_type=out_type, pre=pre, name=src.manifest.name or src.id,
                       progress=progress)
        manifest = gguf_manifest(out, model_id=model_id, source=f"convert:{src.id}:{out_type.upper()}",
                                 sha256=sha256_file(out), license=src.manifest.license,
                                 parent=src.id if store.has(src.id) else None)
        return store.commit(staged, manifest, replace=replace)
