"""`vllm serve` argument building: each setting, and refusal of bad combinations before start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deeplocal.config import ConfigError
from deeplocal.engine.vllm.args import (
    ServeTarget,
    VllmSettingsError,
    build_serve_argv,
    check_settings,
    setting_problems,
)
from deeplocal.engine.vllm.config import LoraAdapter, VllmSettings

TARGET = ServeTarget(model="/models/ds", served_name="ds", port=8123)


def argv(**kw) -> list[str]:
    return build_serve_argv(VllmSettings(**kw), TARGET)


def value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_default_command_is_vllm_serve_with_positional_model_on_loopback():
    a = argv()
    assert a[:3] == ["vllm", "serve", "/models/ds"]
    assert value(a, "--served-model-name") == "ds"
    assert value(a, "--host") == "127.0.0.1"
    assert value(a, "--port") == "8123"
    assert value(a, "--tensor-parallel-size") == "1"
    assert value(a, "--pipeline-parallel-size") == "1"
    # vLLM's own defaults are left alone: no flag unless set
    for flag in ("--quantization", "--kv-cache-dtype", "--max-model-len", "--gpu-memory-utilization",
                 "--enable-lora", "--distributed-executor-backend", "--swap-space", "--enforce-eager"):
        assert flag not in a


def test_python_of_a_separate_venv_uses_the_module_entry_point_and_model_flag():
    a = argv(python="/opt/vllm/bin/python")
    assert a[:3] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert value(a, "--model") == "/models/ds"


def test_custom_command_not_ending_in_serve_takes_model_flag():
    a = argv(command=("python3", "fake.py"))
    assert a[:2] == ["python3", "fake.py"] and value(a, "--model") == "/models/ds"


@pytest.mark.parametrize(("setting", "flag", "expected"), [
    ({"tensor_parallel_size": 4}, "--tensor-parallel-size", "4"),
    ({"pipeline_parallel_size": 2}, "--pipeline-parallel-size", "2"),
    ({"quantization": "fp8"}, "--quantization", "fp8"),
    ({"quantization": "awq"}, "--quantization", "awq"),
    ({"quantization": "gptq"}, "--quantization", "gptq"),
    ({"kv_cache_dtype": "fp8"}, "--kv-cache-dtype", "fp8"),
    ({"dtype": "bfloat16"}, "--dtype", "bfloat16"),
    ({"max_model_len": 32768}, "--max-model-len", "32768"),
    ({"max_num_seqs": 128}, "--max-num-seqs", "128"),
    ({"max_num_batched_tokens": 8192}, "--max-num-batched-tokens", "8192"),
    ({"gpu_memory_utilization": 0.85}, "--gpu-memory-utilization", "0.85"),
    ({"swap_space_gb": 4}, "--swap-space", "4"),
    ({"cpu_offload_gb": 2.5}, "--cpu-offload-gb", "2.5"),
    ({"distributed_executor_backend": "ray"}, "--distributed-executor-backend", "ray"),
    ({"seed": 7}, "--seed", "7"),
])
def test_each_valued_setting_becomes_its_flag(setting, flag, expected):
    assert value(argv(**setting), flag) == expected


@pytest.mark.parametrize(("setting", "flag"), [
    ({"enable_prefix_caching": True}, "--enable-prefix-caching"),
    ({"enable_prefix_caching": False}, "--no-enable-prefix-caching"),
    ({"enforce_eager": True}, "--enforce-eager"),
    ({"trust_remote_code": True}, "--trust-remote-code"),
])
def test_each_switch_becomes_its_flag(setting, flag):
    assert flag in argv(**setting)


def test_lora_adapters_become_lora_modules():
    a = argv(enable_lora=True, max_loras=2, max_lora_rank=16,
             lora_adapters=[LoraAdapter(name="sql", path="/a/sql"), {"name": "zh", "path": "/a/zh"}])
    assert "--enable-lora" in a
    i = a.index("--lora-modules")
    assert a[i + 1:i + 3] == ["sql=/a/sql", "zh=/a/zh"]
    assert value(a, "--max-loras") == "2" and value(a, "--max-lora-rank") == "16"


def test_multi_node_implies_ray_executor():
    a = argv(nodes=2, tensor_parallel_size=8, pipeline_parallel_size=2)
    assert value(a, "--distributed-executor-backend") == "ray"


def test_extra_args_are_appended_verbatim():
    a = argv(extra_args=("--disable-log-requests", "--block-size", "32"))
    assert a[-3:] == ["--disable-log-requests", "--block-size", "32"]


@pytest.mark.parametrize(("settings", "needle"), [
    ({"lora_adapters": [{"name": "a", "path": "/a"}]}, "enable_lora is false"),
    ({"max_loras": 2}, "enable_lora is false"),
    ({"enable_lora": True, "lora_adapters": [{"name": "a", "path": "/x"}, {"name": "a", "path": "/y"}]},
     "repeats the name"),
    ({"enable_lora": True, "served_name": "a", "lora_adapters": [{"name": "a", "path": "/x"}]},
     "same name as the served model"),
    ({"max_num_seqs": 256, "max_num_batched_tokens": 128}, "must be >= vllm.max_num_seqs"),
    ({"nodes": 2, "pipeline_parallel_size": 2, "distributed_executor_backend": "mp"}, "not 'mp'"),
    ({"nodes": 2, "pipeline_parallel_size": 3}, "multiple of vllm.nodes"),
    ({"nodes": 2, "pipeline_parallel_size": 2, "replicas": 2}, "one multi-node replica"),
    ({"host": "0.0.0.0"}, "loopback only"),
    ({"python": "/v/bin/python", "command": ("vllm", "serve", "--x")}, "not both"),
    ({"replicas": 2, "tensor_parallel_size": 2, "gpus": (0, 1, 2)}, "need 4"),
    ({"gpus": (0, 0)}, "twice"),
    ({"extra_args": ("--port=9000",)}, "--port"),
    ({"extra_args": ("-tp", "2")}, "-tp"),
])
def test_conflicting_settings_are_refused_with_a_clear_message(settings, needle):
    s = VllmSettings(**settings)
    with pytest.raises(VllmSettingsError) as err:
        check_settings(s)
    assert needle in str(err.value)
    with pytest.raises(ConfigError):  # the CLI reports it like any config error
        build_serve_argv(s, TARGET)


def test_every_problem_is_reported_at_once():
    s = VllmSettings(host="10.0.0.5", max_loras=1, extra_args=("--host",))
    assert len(setting_problems(s)) == 3


@pytest.mark.parametrize("bad", [
    {"quantization": "int3"}, {"kv_cache_dtype": "int8"}, {"tensor_parallel_size": 0},
    {"gpu_memory_utilization": 1.5}, {"gpu_memory_utilization": 0}, {"max_num_seqs": 0},
    {"no_such_setting": 1}, {"command": ()}, {"lora_adapters": [{"name": "a=b", "path": "/p"}]},
])
def test_unknown_or_out_of_range_settings_fail_validation(bad):
    with pytest.raises(ValidationError):
        VllmSettings(**bad)


def test_settings_are_frozen():
    with pytest.raises(ValidationError):
        VllmSettings().tensor_parallel_size = 2  # type: ignore[misc]


def test_backend_is_built_through_the_registry_door_and_refuses_bad_settings_at_once():
    from types import SimpleNamespace

    from deeplocal.config import ModelConfig, Settings
    from deeplocal.engine.backend import Backend
    from deeplocal.engine.vllm.backend import VllmBackend

    app_settings = SimpleNamespace(vllm=VllmSettings(tensor_parallel_size=2, enable_lora=True))
    backend = VllmBackend.from_config("ds-7b", "/models/ds", app_settings)
    assert isinstance(backend, Backend)
    assert (backend.name, backend.model, backend.vllm.tensor_parallel_size) == ("vllm:ds-7b", "/models/ds", 2)
    assert backend.capabilities.lora and not backend.stats().healthy      # nothing started yet
    plain = VllmBackend.from_model_config(ModelConfig(source="org/model", backend="vllm"), Settings())
    assert (plain.served_name, plain.model) == ("org/model", "org/model")
    with pytest.raises(VllmSettingsError, match="enable_lora is false"):
        VllmBackend("m", "/m", VllmSettings(max_loras=2))
