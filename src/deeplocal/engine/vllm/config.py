"""`VllmSettings`: how deeplocal runs and supervises a `vllm serve` child. Frozen, validated once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

QuantizationName = Literal["fp8", "awq", "gptq"]
KvCacheDtype = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
ModelDtype = Literal["auto", "half", "float16", "bfloat16", "float32"]
ExecutorBackend = Literal["mp", "ray"]

OPENAI_SERVER_MODULE = "vllm.entrypoints.openai.api_server"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LoraAdapter(_Frozen):
    """A LoRA adapter served under its own model name (`--lora-modules name=path`)."""

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "=" in value or any(ch.isspace() for ch in value):
            raise ValueError("an adapter name may not contain '=' or spaces")
        return value


class VllmSettings(_Frozen):
    """Engine options (passed to `vllm serve`) and supervision options (ours).

    `command` is the executable prefix. The default `("vllm", "serve")` takes the model as a
    positional argument; with `python` set (the interpreter of a separate venv) the command becomes
    `python -m vllm.entrypoints.openai.api_server --model ...`.
    """

    # --- what to run
    command: tuple[str, ...] = ("vllm", "serve")
    python: str | None = None
    model: str | None = None                 # path or HF id; default: the model config's source
    served_name: str | None = None           # default: the model config's id
    host: str = "127.0.0.1"                  # the child's private listen address (loopback only)
    port: int = Field(0, ge=0, le=65535)     # 0: pick a free port at start
    env: dict[str, str] = Field(default_factory=dict)

    # --- engine options (None: vLLM's own default, flag not passed)
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    quantization: QuantizationName | None = None
    kv_cache_dtype: KvCacheDtype = "auto"
    dtype: ModelDtype = "auto"
    max_model_len: int | None = Field(None, ge=16)
    max_num_seqs: int | None = Field(None, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=16)
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    swap_space_gb: float | None = Field(None, ge=0.0)   # older vLLM only: 0.32 has no --swap-space
    cpu_offload_gb: float | None = Field(None, ge=0.0)
    enable_prefix_caching: bool | None = None
    enable_lora: bool = False
    lora_adapters: tuple[LoraAdapter, ...] = ()
    max_loras: int | None = Field(None, ge=1)
    max_lora_rank: int | None = Field(None, ge=1)
    distributed_executor_backend: ExecutorBackend | None = None
    nodes: int = Field(1, ge=1)              # >1: a Ray cluster, pipeline stages across nodes
    enforce_eager: bool = False
    trust_remote_code: bool = False
    seed: int | None = None
    extra_args: tuple[str, ...] = ()         # passed through verbatim; may not repeat a managed flag

    # --- replicas on one machine
    replicas: int = Field(1, ge=1)
    gpus: tuple[int, ...] | None = None      # device ids to share out; default 0..n-1

    # --- supervision
    startup_timeout_s: float = Field(900.0, gt=0)
    health_interval_s: float = Field(2.0, gt=0)
    unhealthy_after: int = Field(3, ge=1)    # failed health checks in a row before a restart
    stop_timeout_s: float = Field(30.0, gt=0)
    max_restarts: int = Field(5, ge=0)       # within restart_window_s; then the backend is failed
    restart_window_s: float = Field(600.0, gt=0)
    restart_backoff_s: float = Field(1.0, gt=0)
    restart_backoff_max_s: float = Field(60.0, gt=0)
    metrics_interval_s: float = Field(1.0, gt=0)
    first_token_timeout_s: float = Field(300.0, gt=0)   # queueing in vLLM counts here
    idle_timeout_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(3600.0, gt=0)
    log_tail_lines: int = Field(40, ge=1)

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not value[0]:
            raise ValueError("command needs at least the executable")
        return value

    @property
    def devices_per_replica(self) -> int:
        """GPUs one replica uses on each machine: TP within a node, PP stages split across nodes."""
        return self.tensor_parallel_size * max(1, self.pipeline_parallel_size // self.nodes)

    def launcher(self) -> tuple[tuple[str, ...], bool]:
        """The executable prefix and whether the model is positional (`vllm serve MODEL`)."""
        if self.python:
            return (self.python, "-m", OPENAI_SERVER_MODULE), False
        return self.command, self.command[-1] == "serve"
