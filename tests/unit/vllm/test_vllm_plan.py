"""From a planner result to a `vllm serve` command: the planner's yaml section and its flags both
become VllmSettings that build the same flags."""

from __future__ import annotations

import pytest
import yaml

from deeplocal.engine.vllm.args import ServeTarget, build_serve_argv, settings_from_flags
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.planner.gpus import gpu_from_name
from deeplocal.planner.plan import PlanRequest, plan
from deeplocal.planner.specs import model_from_name

TARGET = ServeTarget(model="/m", served_name="m", port=9000)

CASES = [  # (model, precision, context, concurrency, gpu): single GPU, TP, MoE + EP, multi-node PP
    ("deepseek-r1-distill-qwen-7b", "bf16", 8192, 4, "l40s"),
    ("deepseek-r1-distill-llama-70b", "fp8", 32768, 8, "h100-sxm"),
    ("deepseek-r1", "fp8", 32768, 8, "h200"),
    ("llama-3.1-405b", "bf16", 8192, 4, "a100-80gb"),
]


def plan_option(model, precision, context, concurrency, gpu):
    result = plan(PlanRequest(model=model_from_name(model), precision=precision, context=context,
                              concurrency=concurrency, devices=(gpu_from_name(gpu),), max_nodes=4))
    option = result.options[0]
    assert option.engine == "vllm" and option.fits
    return option


def same(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def assert_flags_present(argv: list[str], flags) -> None:
    """Every planner flag is in argv with an equal value (`auto`, vLLM's default, may be left out)."""
    for flag, value in flags:
        if value == "auto" and flag not in argv:
            continue
        assert flag in argv, flag
        if value is not None:
            assert same(argv[argv.index(flag) + 1], value), (flag, value)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_planner_yaml_section_is_valid_vllm_settings(case):
    option = plan_option(*case)
    section = yaml.safe_load(option.config_yaml)["vllm"]
    settings = VllmSettings(**section)
    assert_flags_present(build_serve_argv(settings, TARGET), option.settings.vllm_flags)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_planner_flags_become_settings(case):
    option = plan_option(*case)
    settings = settings_from_flags(option.settings.vllm_flags, nodes=option.fit.nodes)
    assert settings.tensor_parallel_size == option.fit.tp
    assert settings.pipeline_parallel_size == option.fit.pp
    assert_flags_present(build_serve_argv(settings, TARGET), option.settings.vllm_flags)


def test_multi_node_plan_renders_ray():
    option = plan_option(*CASES[-1])
    assert option.fit.nodes > 1
    settings = VllmSettings(**yaml.safe_load(option.config_yaml)["vllm"])
    argv = build_serve_argv(settings, TARGET)
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"


def test_unknown_flags_go_to_extra_args_and_switches_to_settings():
    s = settings_from_flags([("--enable-expert-parallel", None), ("--enable-prefix-caching", None),
                             ("--block-size", "32"), ("--max-num-seqs", "64")])
    assert s.extra_args == ("--enable-expert-parallel", "--block-size", "32")
    assert s.enable_prefix_caching is True and s.max_num_seqs == 64
