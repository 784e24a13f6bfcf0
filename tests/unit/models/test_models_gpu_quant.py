from __future__ import annotations

import pytest

from deeplocal.models.errors import ModelError
from deeplocal.models.gpu_quant import plan_vllm_quantization

BF16 = {"model_type": "qwen2", "torch_dtype": "bfloat16"}
FP8_CKPT = BF16 | {"quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}
COMPRESSED = BF16 | {"quantization_config": {"quant_method": "compressed-tensors",
                                             "config_groups": {"g": {"weights": {"type": "float", "num_bits": 8}}}}}


def test_plain_checkpoint_is_served_as_is() -> None:
    plan = plan_vllm_quantization(BF16)
    assert plan.mode == "none" and plan.vllm_args == () and plan.weight_bytes_per_param == 2.0


def test_dynamic_fp8_adds_the_flag_and_halves_weights() -> None:
    plan = plan_vllm_quantization(BF16, requested="fp8", compute_capability=(9, 0))
    assert plan.vllm_args == ("--quantization", "fp8") and plan.weight_bytes_per_param == 1.0
    assert plan.compute == "w8a8"


@pytest.mark.parametrize("config", [FP8_CKPT, COMPRESSED])
def test_offline_fp8_checkpoint_needs_no_flag(config: dict) -> None:
    plan = plan_vllm_quantization(config, requested="fp8", kv_fp8=True, compute_capability=(8, 0))
    assert plan.mode == "fp8-checkpoint" and plan.vllm_args == ("--kv-cache-dtype", "fp8")
    assert plan.compute == "w8a16" and plan.kv_bytes_per_element == 1


def test_old_gpus_and_unknown_methods_are_refused() -> None:
    with pytest.raises(ModelError, match="7.5"):
        plan_vllm_quantization(BF16, requested="fp8", compute_capability=(7, 0))
    with pytest.raises(ModelError, match="not supported"):
        plan_vllm_quantization(BF16, requested="int3")
