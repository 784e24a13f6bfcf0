"""Engine settings to start from: vLLM flags, llama.cpp settings, and a deeplocal.yaml.

The yaml has the shape of deeplocal's Settings: `server`, `engine` (the llama.cpp engine), `models`,
and for vLLM plans a `vllm:` section whose keys are those of engine/vllm/config.py's VllmSettings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from deeplocal.planner.fit import Fit, FitInputs, batched_tokens
from deeplocal.planner.memory import GIB

MAX_ENGINE_SEQS = 256  # deeplocal's EngineSettings.max_num_seqs upper bound
LLAMACPP_BATCH = 512


@dataclass(frozen=True, slots=True)
class EngineSettings:
    engine: str
    vllm_flags: tuple[tuple[str, str | None], ...] = ()  # (flag, value); value None for switches
    llamacpp: dict[str, object] = field(default_factory=dict)

    def command_line(self, model: str) -> str:
        if self.engine != "vllm":
            return ""
        parts = ["vllm", "serve", model]
        for flag, value in self.vllm_flags:
            parts += [flag] if value is None else [flag, value]
        return " ".join(parts)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"engine": self.engine}
        if self.engine == "vllm":
            out["vllm_flags"] = {flag: value for flag, value in self.vllm_flags}
        else:
            out["llamacpp"] = dict(self.llamacpp)
        return out


def _seqs(fit: Fit, inp: FitInputs) -> int:
    """vLLM: admit what the KV budget holds. llama.cpp allocates n_ctx up front: only what was asked."""
    fits = fit.max_concurrency or inp.concurrency
    wanted = fits if inp.engine == "vllm" else min(inp.concurrency, fits)
    return max(1, min(MAX_ENGINE_SEQS, wanted))


def _threads(fit: Fit) -> int:
    if fit.device.is_cpu and fit.device.cores:
        return fit.device.cores
    return max(1, min(8, os.cpu_count() or 1)) if fit.device.is_cpu else 4


def vllm_flags(inp: FitInputs, fit: Fit) -> tuple[tuple[str, str | None], ...]:
    flags: list[tuple[str, str | None]] = [("--tensor-parallel-size", str(fit.tp))]
    if fit.pp > 1:
        flags.append(("--pipeline-parallel-size", str(fit.pp)))
    native = inp.precision.name == inp.spec.native_dtype
    if inp.precision.vllm_quantization and not native:
        flags.append(("--quantization", inp.precision.vllm_quantization))
    flags += [
        ("--kv-cache-dtype", inp.kv.vllm_name or "auto"),
        ("--max-model-len", str(inp.context)),
        ("--max-num-seqs", str(_seqs(fit, inp))),
        ("--max-num-batched-tokens", str(batched_tokens(inp, fit.device))),
        ("--gpu-memory-utilization", f"{inp.gpu_memory_utilization:.2f}"),
    ]
    if fit.memory.offloaded:
        flags.append(("--cpu-offload-gb", f"{fit.memory.offloaded / GIB:.1f}"))
    if inp.spec.moe is not None and fit.n_devices > 1:
        flags.append(("--enable-expert-parallel", None))
    return tuple(flags)


def llamacpp_settings(inp: FitInputs, fit: Fit) -> dict[str, object]:
    seqs = _seqs(fit, inp)
    if fit.device.is_cpu:
        gpu_layers = 0
    elif fit.memory.offloaded:
        share = fit.memory.weights / (fit.memory.weights + fit.memory.offloaded)
        gpu_layers = int(inp.spec.n_layers * share)
    else:
        gpu_layers = -1  # all layers
    out: dict[str, object] = {
        "n_gpu_layers": gpu_layers,
        "n_ctx": inp.context * seqs,  # KV cells for all sequences: `context` each
        "n_parallel": seqs,
        "n_threads": _threads(fit),
        "n_batch": LLAMACPP_BATCH,
        "cache_type_k": inp.kv.llamacpp_name or "f16",
        "cache_type_v": inp.kv.llamacpp_name or "f16",
    }
    if fit.n_devices > 1:
        out.update(split_mode="layer", tensor_split=[1] * fit.n_devices)
    if fit.offload_to == "ssd":
        out["use_mmap"] = True
    return out


def engine_settings(inp: FitInputs, fit: Fit) -> EngineSettings:
    if inp.engine == "vllm":
        return EngineSettings("vllm", vllm_flags=vllm_flags(inp, fit))
    return EngineSettings("llamacpp", llamacpp=llamacpp_settings(inp, fit))


def _flag_value(settings: EngineSettings, flag: str) -> str | None:
    return dict(settings.vllm_flags).get(flag)


def deeplocal_yaml(inp: FitInputs, fit: Fit, settings: EngineSettings, *, source: str, model_id: str) -> str:
    """A deeplocal.yaml to start from for this plan."""
    seqs = _seqs(fit, inp)
    doc: dict[str, object] = {"server": {"host": "127.0.0.1", "port": 8000}}
    if settings.engine == "vllm":
        vllm: dict[str, object] = {
            "tensor_parallel_size": fit.tp,
            "pipeline_parallel_size": fit.pp,
            "kv_cache_dtype": inp.kv.vllm_name or "auto",
            "max_model_len": inp.context,
            "max_num_seqs": seqs,
            "max_num_batched_tokens": batched_tokens(inp, fit.device),
            "gpu_memory_utilization": round(inp.gpu_memory_utilization, 2),
        }
        quant = _flag_value(settings, "--quantization")
        if quant:
            vllm["quantization"] = quant
        if fit.memory.offloaded:
            vllm["cpu_offload_gb"] = round(fit.memory.offloaded / GIB, 1)
        if fit.pp > 1:
            vllm["nodes"] = fit.nodes
            vllm["distributed_executor_backend"] = "ray"
        if ("--enable-expert-parallel", None) in settings.vllm_flags:
            vllm["extra_args"] = ["--enable-expert-parallel"]
        doc["vllm"] = vllm
        doc["models"] = [{"source": source, "id": model_id, "backend": "vllm"}]
    else:
        ll = settings.llamacpp
        doc["engine"] = {
            "n_ctx": ll["n_ctx"],
            "n_threads": ll["n_threads"],
            "n_batch": LLAMACPP_BATCH,
            "n_gpu_layers": ll["n_gpu_layers"],
            "max_num_seqs": seqs,
            "max_num_batched_tokens": LLAMACPP_BATCH,
            "max_queue": 4 * seqs,
        }
        doc["models"] = [{"source": source, "id": model_id, "backend": "llamacpp"}]
    header = (f"# deeplocal.yaml from `deeplocal plan`: {model_id} at {inp.precision.name}, "
              f"{fit.n_devices} x {fit.device.name}, context {inp.context}, up to {seqs} sequences.\n")
    if settings.engine != "vllm":
        header += ("# models[].source: a store id (`deeplocal models pull`), a catalog name or a .gguf path;\n"
                   f"# the plan assumes a {inp.precision.gguf_type or inp.precision.name} GGUF.\n")
    return header + yaml.safe_dump(doc, sort_keys=False)
