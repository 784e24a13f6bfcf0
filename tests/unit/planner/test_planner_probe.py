"""Measuring this host for a CPU-only plan."""

from __future__ import annotations

from deeplocal.planner import PlanRequest, model_from_name, plan
from deeplocal.planner.probe import measure_cpu


def test_measure_cpu_gives_usable_figures_and_a_plan() -> None:
    cpu = measure_cpu()
    assert cpu.is_cpu and cpu.memory_gib > 0.5 and cpu.bandwidth_gbs > 0.1 and cpu.bf16_tflops > 0.001
    opt = plan(PlanRequest(model_from_name("smollm2-135m"), precision="q4_1", context=2048,
                           devices=(cpu,))).options[0]
    assert opt.fits and opt.engine == "llamacpp" and opt.decode_single.tokens_per_s_per_seq > 0
