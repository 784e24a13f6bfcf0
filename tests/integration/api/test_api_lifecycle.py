"""Back-pressure over HTTP, several models, and graceful shutdown, each on its own real server."""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading

import httpx
from serverproc import start_server

from deeplocal.models.catalog import bundled_model_path

BODY = {"model": "smollm2-135m-instruct", "max_tokens": 40, "ignore_eos": True,
        "messages": [{"role": "user", "content": "Tell me a story."}]}


def test_burst_over_queue_gets_429_then_serves(tmp_path):
    srv = start_server(tmp_path, "--max-num-seqs", "1", env={"DEEPLOCAL_ENGINE__MAX_QUEUE": "1"})
    try:
        async def burst():
            async with httpx.AsyncClient(base_url=srv.base_url, timeout=120) as c:
                return await asyncio.gather(*(c.post("/v1/chat/completions", json=BODY) for _ in range(8)))

        responses = asyncio.run(burst())
        codes = sorted(r.status_code for r in responses)
        assert 200 in codes and 429 in codes, codes
        for r in responses:
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"]["type"] == "rate_limit_error"
        ok = httpx.post(srv.base_url + "/v1/chat/completions", json=BODY, timeout=120)
        assert ok.status_code == 200
    finally:
        assert srv.stop() == 0


def test_two_models_each_under_its_own_id(tmp_path):
    copy = tmp_path / "other.gguf"
    shutil.copy(bundled_model_path(), copy)
    srv = start_server(tmp_path, "-m", "smollm2", "-m", f"second={copy}")
    try:
        ids = [m["id"] for m in httpx.get(srv.base_url + "/v1/models").json()["data"]]
        assert ids == ["smollm2-135m-instruct", "second"]
        for model in ids:
            r = httpx.post(srv.base_url + "/v1/chat/completions", timeout=60,
                           json={**BODY, "model": model, "max_tokens": 3})
            assert r.status_code == 200 and r.json()["model"] == model
        r = httpx.post(srv.base_url + "/v1/chat/completions", json={**BODY, "model": "third"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    finally:
        srv.stop()


def test_sigterm_drains_in_flight_and_exits_zero(tmp_path):
    srv = start_server(tmp_path)
    result = {}

    def stream():
        with httpx.stream("POST", srv.base_url + "/v1/chat/completions", timeout=120,
                          json={**BODY, "max_tokens": 150, "stream": True}) as r:
            result["lines"] = [ln for ln in r.iter_lines() if ln]

    t = threading.Thread(target=stream)
    t.start()
    deadline = 0
    while "lines" not in result and deadline < 100:
        load = httpx.get(srv.base_url + "/ready").json()["load"]["smollm2-135m-instruct"]
        if load["running"]:
            break
        deadline += 1
        threading.Event().wait(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    t.join(120)
    assert srv.proc.wait(60) == 0
    assert result["lines"][-1] == "data: [DONE]"
    assert any('"finish_reason":"length"' in ln for ln in result["lines"])


def test_request_timeout_stops_generation(tmp_path):
    srv = start_server(tmp_path, env={"DEEPLOCAL_SERVER__REQUEST_TIMEOUT_S": "1"})
    try:
        r = httpx.post(srv.base_url + "/v1/chat/completions", timeout=60, json={**BODY, "max_tokens": 1500})
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        with httpx.stream("POST", srv.base_url + "/v1/chat/completions", timeout=60,
                          json={**BODY, "max_tokens": 1500, "stream": True}) as s:
            lines = [ln for ln in s.iter_lines() if ln]
        assert '"code":"timeout"' in lines[-2] and lines[-1] == "data: [DONE]"
        load = httpx.get(srv.base_url + "/ready").json()["load"]["smollm2-135m-instruct"]
        assert load["running"] == 0
    finally:
        srv.stop()


def test_serve_a_store_id_and_refuse_an_unknown_model(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEEPLOCAL_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-m", "deeplocal", "models", "import", str(bundled_model_path()),
                    "--id", "my-smol", "--link"], env=env, check=True, capture_output=True, cwd=tmp_path)
    srv = start_server(tmp_path, "-m", "my-smol")
    try:
        ids = [m["id"] for m in httpx.get(srv.base_url + "/v1/models").json()["data"]]
        assert ids == ["my-smol"]
    finally:
        srv.stop()
    bad = subprocess.run([sys.executable, "-m", "deeplocal", "serve", "-m", "no-such-model", "--port", "0"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "no-such-model" in bad.stderr and "Traceback" not in bad.stderr
