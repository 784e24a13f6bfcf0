"""Route to a second real deeplocal (`deeplocal serve` with the bundled model) on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from deeplocal.engine.types import GenerationRequest, Message, SamplingParams
from deeplocal.models.catalog import bundled_model_path
from deeplocal.routing.config import RoutingSettings
from deeplocal.routing.errors import NoAllowedUpstream
from deeplocal.routing.router import Router

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bundled_model_path() is None, reason="the bundled model is not installed"),
]


@pytest.fixture(scope="module")
def deeplocal_url() -> Iterator[tuple[str, str, subprocess.Popen]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from deeplocal.cli.main import main; main()", "serve", "--port", "0",
         "--threads", "1", "--n-ctx", "1024", "--max-num-seqs", "2", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline() if proc.stderr else ""
            if not line and proc.poll() is not None:
                break
            found = re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line)
            url = found.group(1) if found else None
        assert url, "deeplocal serve did not announce its URL"
        for _ in range(200):
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        served_id = httpx.get(url + "/models", timeout=5).json()["data"][0]["id"]
        yield url, served_id, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_restricted_request_served_by_a_second_deeplocal_then_refused_when_it_dies(deeplocal_url, cloud):
    url, served_id, proc = deeplocal_url
    cfg = RoutingSettings(
        upstreams={
            "replica": {"kind": "local", "base_url": url, "model": served_id,
                        "timeouts": {"connect_s": 2, "first_token_s": 60, "idle_s": 30, "total_s": 120}},
            "cloud": {"kind": "remote", "base_url": cloud.base_url, "may_receive": ["public"],
                      "timeouts": {"connect_s": 2, "first_token_s": 5, "idle_s": 5, "total_s": 10}},
        },
        aliases={"deepseek-chat": ["cloud", "replica"]},
        policy={"health": {"interval_s": 0}, "retry": {"per_upstream": 0}},
    )
    req = GenerationRequest(request_id="q", model="deepseek-chat",
                            messages=(Message("user", "What is the capital of France?"),),
                            sampling=SamplingParams(temperature=0.0, max_tokens=8))
    async with Router(cfg, local_backends={}) as router:
        stream = await router.open(req, data_class="restricted")
        assert stream.upstream == "replica" and not stream.remote
        chunks = [c async for c in stream]
        assert "".join(c.text for c in chunks).strip()
        assert chunks[-1].finish_reason is not None
        assert stream.usage is not None and 0 < stream.usage.completion_tokens <= 8
        proc.terminate()
        proc.wait(timeout=30)
        with pytest.raises(NoAllowedUpstream, match="restricted"):
            await router.open(req, data_class="restricted")
        public = await router.open(req, data_class="public")
        assert public.upstream == "cloud"
        assert [c async for c in public]
    assert len(cloud.log()) == 1  # only the public request went out
