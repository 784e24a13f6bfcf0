"""Build and check the `vllm serve` command line. Pure functions of `VllmSettings`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deeplocal.config import ConfigError
from deeplocal.engine.vllm.config import VllmSettings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Flags deeplocal sets itself; `extra_args` may not repeat them (first spelling is vLLM's).
MANAGED_FLAGS = frozenset({
    "--model", "--served-model-name", "--host", "--port", "--api-key",
    "--tensor-parallel-size", "-tp", "--pipeline-parallel-size", "-pp",
    "--quantization", "-q", "--kv-cache-dtype", "--dtype", "--max-model-len",
    "--max-num-seqs", "--max-num-batched-tokens", "--gpu-memory-utilization",
    "--swap-space", "--cpu-offload-gb", "--enable-prefix-caching", "--no-enable-prefix-caching",
    "--enable-lora", "--lora-modules", "--max-loras", "--max-lora-rank",
    "--distributed-executor-backend", "--enforce-eager", "--trust-remote-code", "--seed",
})


class VllmSettingsError(ConfigError):
    """The vLLM settings are unknown, out of range or contradict each other; nothing was started."""


@dataclass(frozen=True, slots=True)
class ServeTarget:
    """What one child serves and where: the parts of the command line not in `VllmSettings`."""

    model: str
    served_name: str
    port: int


def setting_problems(s: VllmSettings) -> list[str]:
    """Every contradiction in `s`, as a sentence naming the settings involved. Empty: fine."""
    problems: list[str] = []
    if s.host not in LOOPBACK_HOSTS:
        problems.append(f"vllm.host is {s.host!r}: the child listens on loopback only; "
                        "expose deeplocal's server instead (server.host)")
    if s.python and s.command != VllmSettings.model_fields["command"].default:
        problems.append("set vllm.python or vllm.command, not both")
    problems += _lora_problems(s)
    if s.max_num_seqs and s.max_num_batched_tokens and s.max_num_batched_tokens < s.max_num_seqs:
        problems.append(f"vllm.max_num_batched_tokens ({s.max_num_batched_tokens}) must be >= "
                        f"vllm.max_num_seqs ({s.max_num_seqs})")
    problems += _distributed_problems(s)
    problems += _device_problems(s)
    problems += _extra_arg_problems(s.extra_args)
    return problems


def _lora_problems(s: VllmSettings) -> list[str]:
    out: list[str] = []
    if not s.enable_lora:
        for key in ("lora_adapters", "max_loras", "max_lora_rank"):
            if getattr(s, key):
                out.append(f"vllm.{key} is set but vllm.enable_lora is false")
    names = [a.name for a in s.lora_adapters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(f"vllm.lora_adapters repeats the name(s) {', '.join(dupes)}")
    if s.served_name and s.served_name in names:
        out.append(f"LoRA adapter {s.served_name!r} has the same name as the served model")
    return out


def _distributed_problems(s: VllmSettings) -> list[str]:
    out: list[str] = []
    if s.nodes > 1:
        if s.distributed_executor_backend == "mp":
            out.append(f"vllm.nodes is {s.nodes}: several nodes need "
                       "distributed_executor_backend 'ray', not 'mp'")
        if s.pipeline_parallel_size % s.nodes:
            out.append(f"vllm.pipeline_parallel_size ({s.pipeline_parallel_size}) must be a multiple of "
                       f"vllm.nodes ({s.nodes}): pipeline stages are split evenly across nodes")
        if s.replicas > 1:
            out.append("vllm.replicas > 1 and vllm.nodes > 1: run one multi-node replica per Ray "
                       "cluster; scale out with more clusters behind routing")
    return out


def _device_problems(s: VllmSettings) -> list[str]:
    if s.gpus is None:
        return []
    out: list[str] = []
    if len(set(s.gpus)) != len(s.gpus):
        out.append(f"vllm.gpus lists a device twice: {list(s.gpus)}")
    if any(g < 0 for g in s.gpus):
        out.append("vllm.gpus holds a negative device id")
    need = s.replicas * s.devices_per_replica
    if len(s.gpus) != need:
        out.append(f"vllm.gpus has {len(s.gpus)} device(s) but {s.replicas} replica(s) x "
                   f"tensor_parallel_size {s.tensor_parallel_size} x local pipeline stages "
                   f"{s.devices_per_replica // s.tensor_parallel_size} need {need}")
    return out


def _extra_arg_problems(extra: tuple[str, ...]) -> list[str]:
    clashes = sorted({a.split("=", 1)[0] for a in extra if a.split("=", 1)[0] in MANAGED_FLAGS})
    if clashes:
        return [(f"vllm.extra_args repeats flag(s) deeplocal manages: {', '.join(clashes)}; "
                 "use the matching vllm.* setting")]
    return []


def check_settings(s: VllmSettings) -> None:
    """Raise `VllmSettingsError` listing every problem, before anything is started."""
    problems = setting_problems(s)
    if problems:
        raise VllmSettingsError("invalid vLLM settings: " + "; ".join(problems))


def executor_backend(s: VllmSettings) -> str | None:
    return "ray" if s.nodes > 1 and s.distributed_executor_backend is None else s.distributed_executor_backend


def build_serve_argv(s: VllmSettings, target: ServeTarget) -> list[str]:
    """The full argv of one child. Checks the settings first."""
    check_settings(s)
    prefix, positional = s.launcher()
    argv = [*prefix, target.model] if positional else [*prefix, "--model", target.model]
    argv += ["--served-model-name", target.served_name, "--host", s.host, "--port", str(target.port)]
    argv += ["--tensor-parallel-size", str(s.tensor_parallel_size),
             "--pipeline-parallel-size", str(s.pipeline_parallel_size)]
    argv += _valued_flags(s)
    argv += _switch_flags(s)
    argv += _lora_flags(s)
    argv += list(s.extra_args)
    return argv


def _valued_flags(s: VllmSettings) -> list[str]:
    pairs: list[tuple[str, object]] = [
        ("--quantization", s.quantization),
        ("--kv-cache-dtype", None if s.kv_cache_dtype == "auto" else s.kv_cache_dtype),
        ("--dtype", None if s.dtype == "auto" else s.dtype),
        ("--max-model-len", s.max_model_len),
        ("--max-num-seqs", s.max_num_seqs),
        ("--max-num-batched-tokens", s.max_num_batched_tokens),
        ("--gpu-memory-utilization", s.gpu_memory_utilization),
        ("--swap-space", s.swap_space_gb),
        ("--cpu-offload-gb", s.cpu_offload_gb),
        ("--distributed-executor-backend", executor_backend(s)),
        ("--seed", s.seed),
    ]
    out: list[str] = []
    for flag, value in pairs:
        if value is not None:
            out += [flag, _fmt(value)]
    return out


def _switch_flags(s: VllmSettings) -> list[str]:
    out: list[str] = []
    if s.enable_prefix_caching is not None:
        out.append("--enable-prefix-caching" if s.enable_prefix_caching else "--no-enable-prefix-caching")
    if s.enforce_eager:
        out.append("--enforce-eager")
    if s.trust_remote_code:
        out.append("--trust-remote-code")
    return out


def _lora_flags(s: VllmSettings) -> list[str]:
    if not s.enable_lora:
        return []
    out = ["--enable-lora"]
    if s.lora_adapters:
        out += ["--lora-modules", *(f"{a.name}={a.path}" for a in s.lora_adapters)]
    if s.max_loras is not None:
        out += ["--max-loras", str(s.max_loras)]
    if s.max_lora_rank is not None:
        out += ["--max-lora-rank", str(s.max_lora_rank)]
    return out


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# `vllm serve` flag -> VllmSettings field, for reading flags back (a planner result, a pasted command).
FIELD_OF_FLAG = {
    "--tensor-parallel-size": "tensor_parallel_size", "-tp": "tensor_parallel_size",
    "--pipeline-parallel-size": "pipeline_parallel_size", "-pp": "pipeline_parallel_size",
    "--quantization": "quantization", "-q": "quantization", "--kv-cache-dtype": "kv_cache_dtype",
    "--dtype": "dtype", "--max-model-len": "max_model_len", "--max-num-seqs": "max_num_seqs",
    "--max-num-batched-tokens": "max_num_batched_tokens",
    "--gpu-memory-utilization": "gpu_memory_utilization", "--swap-space": "swap_space_gb",
    "--cpu-offload-gb": "cpu_offload_gb", "--distributed-executor-backend": "distributed_executor_backend",
    "--max-loras": "max_loras", "--max-lora-rank": "max_lora_rank", "--seed": "seed",
}
SWITCH_OF_FLAG = {
    "--enable-prefix-caching": ("enable_prefix_caching", True),
    "--no-enable-prefix-caching": ("enable_prefix_caching", False),
    "--enable-lora": ("enable_lora", True), "--enforce-eager": ("enforce_eager", True),
    "--trust-remote-code": ("trust_remote_code", True),
}


def settings_from_flags(flags: Sequence[tuple[str, str | None]], base: VllmSettings | None = None,
                        **overrides: Any) -> VllmSettings:
    """VllmSettings from `(flag, value)` pairs (a planner's `vllm_flags`; value None for a switch).

    Flags with a setting become that setting (validated as usual); others go to `extra_args`.
    """
    fields: dict[str, Any] = {}
    extra: list[str] = list(base.extra_args) if base else []
    for flag, value in flags:
        if flag in FIELD_OF_FLAG and value is not None:
            fields[FIELD_OF_FLAG[flag]] = value
        elif flag in SWITCH_OF_FLAG and value is None:
            name, on = SWITCH_OF_FLAG[flag]
            fields[name] = on
        else:
            extra += [flag] if value is None else [flag, value]
    merged = {**(base.model_dump() if base else {}), **fields, "extra_args": tuple(extra), **overrides}
    return VllmSettings(**merged)
