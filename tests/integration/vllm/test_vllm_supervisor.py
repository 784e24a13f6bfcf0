"""The supervisor's lifecycle against the stand-in executable: health gating, crash and hang
recovery, bounded restarts, graceful and forced stop, child logs into ours."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import pytest
from vllm_fakes import chat, collect

from deeplocal.engine.errors import BackendUnavailable
from deeplocal.engine.vllm.backend import VllmBackend
from deeplocal.engine.vllm.process import group_members
from deeplocal.engine.vllm.supervisor import ChildState

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    """Running (a zombie holds no memory; this sandbox's init may be slow to reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def poke(backend: VllmBackend, path: str) -> None:
    url = backend.replicas[0].root_url + path
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError) if path == "/fake/crash" else _nothing():
            await client.post(url, json={})


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


async def test_start_waits_for_health_of_a_slow_child(fake):
    backend = VllmBackend("tiny", "/models/tiny", fake.settings(env={"FAKE_VLLM_START_DELAY": "1.0"}))
    started = time.monotonic()
    await backend.start()
    try:
        assert time.monotonic() - started >= 1.0
        sup = backend.replicas[0].supervisor
        assert sup.state is ChildState.READY and alive(sup.pid)
        argv = fake.argv(1)
        assert argv[:2] == ["serve", "/models/tiny"]
        assert argv[argv.index("--served-model-name") + 1] == "tiny"
        assert f"http://127.0.0.1:{argv[argv.index('--port') + 1]}" == backend.replicas[0].root_url
        assert fake.env(1)["VLLM_API_KEY"]          # the child's API answers only to us
        assert fake.env(1)["CUDA_VISIBLE_DEVICES"] is None
    finally:
        await backend.stop()


async def test_start_times_out_with_the_log_tail_and_leaves_no_child(fake):
    s = fake.settings(env={"FAKE_VLLM_START_DELAY": "60"}, startup_timeout_s=3.0)
    backend = VllmBackend("tiny", "/models/tiny", s)
    with pytest.raises(BackendUnavailable) as err:
        await backend.start()
    message = str(err.value)
    assert "no healthy /health within 3 s" in message
    assert "fake-vllm start 1: model=/models/tiny" in message      # the child's own log lines
    assert backend.replicas == []
    await asyncio.sleep(0.2)
    assert fake.starts == 1


async def test_a_child_that_exits_at_start_fails_fast_with_its_error(fake):
    s = fake.settings(env={"FAKE_VLLM_EXIT_ON_START": "3"})
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as err:
        await VllmBackend("tiny", "/models/tiny", s).start()
    assert time.monotonic() - started < 5
    assert "exited with code 3" in str(err.value)
    assert "model architecture not supported" in str(err.value)


async def test_arguments_the_real_parser_rejects_surface_in_the_error(fake):
    s = fake.settings(extra_args=("--no-such-vllm-flag",))
    with pytest.raises(BackendUnavailable) as err:
        await VllmBackend("tiny", "/models/tiny", s).start()
    assert "exited with code 2" in str(err.value) and "--no-such-vllm-flag" in str(err.value)


async def test_crash_is_restarted_and_traffic_resumes(fake):
    backend = VllmBackend("tiny", "/models/tiny", fake.settings())
    await backend.start()
    try:
        text, _ = await collect(backend, chat())
        assert text == "tiny-tok0 tiny-tok1 tiny-tok2 tiny-tok3 "
        sup = backend.replicas[0].supervisor
        first_pid = sup.pid
        await poke(backend, "/fake/crash")
        await until(lambda: not sup.ready, timeout=5)
        with pytest.raises(BackendUnavailable):        # while it restarts: a typed, retryable error
            await collect(backend, chat())
        assert not backend.stats().healthy
        await until(lambda: sup.ready, timeout=10)
        assert sup.restarts == 1 and sup.pid != first_pid and fake.starts == 2
        assert "exited with code 1" in (sup.last_error or "")
        text, chunks = await collect(backend, chat(max_tokens=2))
        assert text == "tiny-tok0 tiny-tok1 " and chunks[-1].usage.completion_tokens == 2
    finally:
        await backend.stop()


async def test_a_hung_child_is_killed_and_restarted(fake):
    backend = VllmBackend("tiny", "/models/tiny", fake.settings())
    await backend.start()
    try:
        sup = backend.replicas[0].supervisor
        await poke(backend, "/fake/hang")
        await until(lambda: sup.restarts == 1 and sup.ready, timeout=15)
        assert "hung" in (sup.last_error or "")
        text, _ = await collect(backend, chat(max_tokens=1))
        assert text == "tiny-tok0 "
    finally:
        await backend.stop()


async def test_restarts_are_bounded_then_the_backend_is_failed(fake):
    env = {"FAKE_VLLM_EXIT_ON_START": "4", "FAKE_VLLM_EXIT_FROM_START": "2"}
    backend = VllmBackend("tiny", "/models/tiny", fake.settings(env=env, max_restarts=2))
    await backend.start()
    try:
        sup = backend.replicas[0].supervisor
        await poke(backend, "/fake/crash")
        await until(lambda: sup.state is ChildState.FAILED, timeout=10)
        assert fake.starts == 3                          # the first, then max_restarts attempts
        with pytest.raises(BackendUnavailable) as err:
            await collect(backend, chat())
        assert "failed" in str(err.value) and "model architecture not supported" in str(err.value)
    finally:
        await backend.stop()


async def test_stop_is_graceful_and_quick(fake):
    backend = VllmBackend("tiny", "/models/tiny", fake.settings())
    await backend.start()
    pid = backend.replicas[0].supervisor.pid
    started = time.monotonic()
    await backend.stop()
    assert time.monotonic() - started < 1.5
    assert not alive(pid)


async def test_stop_kills_a_child_that_ignores_sigterm_after_the_timeout(fake):
    s = fake.settings(env={"FAKE_VLLM_IGNORE_SIGTERM": "1"}, stop_timeout_s=1.0)
    backend = VllmBackend("tiny", "/models/tiny", s)
    await backend.start()
    sup = backend.replicas[0].supervisor
    pid = sup.pid
    started = time.monotonic()
    await backend.stop()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0
    assert not alive(pid)
    assert any("ignoring SIGTERM" in line for line in sup.log_tail())


async def test_stop_leaves_no_process_of_the_childs_group(fake):
    backend = VllmBackend("tiny", "/models/tiny", fake.settings(env={"FAKE_VLLM_GRANDCHILD": "1"}))
    await backend.start()
    pgid = backend.replicas[0].supervisor.pid
    worker = int((fake.folder / "worker-1").read_text())
    assert worker in group_members(pgid)
    await backend.stop()
    assert not alive(worker) and group_members(pgid) == []


async def test_child_output_goes_to_our_structured_logs(fake, caplog):
    caplog.set_level(logging.INFO, logger="deeplocal.engine.vllm")
    backend = VllmBackend("tiny", "/models/tiny", fake.settings())
    await backend.start()
    await backend.stop()
    child = [r for r in caplog.records if r.name == "deeplocal.engine.vllm.child"]
    warnings = [r for r in child if r.stream == "stderr" and r.levelno == logging.WARNING]
    assert warnings and warnings[0].getMessage() == "WARNING fake-vllm: this is a stand-in, not vLLM"
    assert any(r.stream == "stdout" and "Uvicorn running" in r.getMessage() for r in child)
    assert all(r.child == "tiny#0" and r.pid for r in child)
