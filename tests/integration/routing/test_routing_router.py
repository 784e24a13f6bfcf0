"""The router with real upstream processes on 127.0.0.1 and faults injected into them."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from typing import Any

import pytest
from routing_fakes import QueueBackend

from deeplocal.engine.errors import InvalidRequest, Overloaded, UpstreamError
from deeplocal.engine.types import GenerationRequest, Message
from deeplocal.gateway.pii import PiiScanner, Pseudonymizer
from deeplocal.routing.config import RoutingSettings
from deeplocal.routing.errors import NoAllowedUpstream, NoUpstreamAvailable
from deeplocal.routing.router import Router

pytestmark = pytest.mark.slow

FAST = {"connect_s": 1, "first_token_s": 1.0, "idle_s": 1.0, "total_s": 10}


def settings(upstreams: dict[str, Any], alias: list[Any], **policy: Any) -> RoutingSettings:
    policy.setdefault("health", {"interval_s": 0})
    policy.setdefault("retry", {"per_upstream": 0, "max_attempts": 4, "backoff_base_s": 0.01})
    return RoutingSettings(upstreams=upstreams, aliases={"deepseek-chat": alias}, policy=policy)


def cloud_upstream(cloud, **extra: Any) -> dict[str, Any]:
    return {"kind": "remote", "base_url": cloud.base_url, "api_key_env": "FAKE_CLOUD_KEY",
            "may_receive": ["public", "internal"], "timeouts": FAST, "price": {"input_per_mtok": 1,
            "output_per_mtok": 2}, **extra}


def ask(text: str = "hello", rid: str = "r") -> GenerationRequest:
    return GenerationRequest(request_id=rid, model="deepseek-chat", messages=(Message("user", text),))


ENV = {"FAKE_CLOUD_KEY": "sk-cloud"}


async def drain(stream) -> str:
    return "".join([chunk.text async for chunk in stream])


async def test_overflow_while_local_queue_is_full_and_back_when_it_drains(cloud):
    local = QueueBackend("local-7b", max_running=1, max_queue=4)
    cfg = settings({"local": {"kind": "local", "engine": "local-7b"}, "cloud": cloud_upstream(cloud)},
                   ["local", {"upstream": "cloud", "model": "deepseek-chat"}], overflow={"max_queue": 1})
    async with Router(cfg, local_backends={"local-7b": local}, env=ENV) as router:
        assert router.primary_backend("deepseek-chat") is local
        assert router.primary_backend("nope") is None
        local.gate.clear()  # admitted generations hold their slot
        first = await router.open(ask(rid="a"), data_class="public")
        assert first.upstream == "local" and not first.remote
        queued = asyncio.create_task(router.open(ask(rid="b"), data_class="public"))
        while local.waiting < 1:
            await asyncio.sleep(0.01)
        overflow = await router.open(ask("to the cloud", rid="c"), data_class="public")
        assert overflow.upstream == "cloud" and overflow.remote
        assert await drain(overflow) == "echo: to the cloud"
        assert overflow.cost_usd > 0
        local.gate.set()
        await drain(first)
        await drain(await queued)
        after = await router.open(ask(rid="d"), data_class="public")
        assert after.upstream == "local"
        await drain(after)
    assert [e["body"]["messages"][-1]["content"] for e in cloud.log()] == ["to the cloud"]
    assert cloud.log()[0]["body"]["model"] == "deepseek-chat"
    assert local.served == ["a", "b", "d"]


async def test_restricted_is_refused_not_leaked_when_local_is_down(cloud):
    local = QueueBackend("local-7b")
    cfg = settings({"local": {"kind": "local", "engine": "local-7b"}, "cloud": cloud_upstream(cloud)},
                   ["local", "cloud"])
    async with Router(cfg, local_backends={"local-7b": local}, env=ENV) as router:
        ok = await router.open(ask("my id is 110101199003074578"), data_class="restricted")
        assert ok.upstream == "local"
        await drain(ok)
        local.down = True
        for _ in range(5):  # also after the local breaker opened
            with pytest.raises(NoAllowedUpstream) as info:
                await router.open(ask("my id is 110101199003074578"), data_class="restricted")
            assert info.value.status_code == 503
            assert "restricted" in info.value.message and "cloud" in info.value.message
        public = await router.open(ask("weather?"), data_class="public")  # others still fail over
        assert public.upstream == "cloud"
        await drain(public)
    assert [e["body"]["messages"][-1]["content"] for e in cloud.log()] == ["weather?"]


async def test_internal_goes_out_pseudonymized_and_comes_back_restored(cloud):
    scanner = PiiScanner()
    cfg = settings({"cloud": cloud_upstream(cloud)}, ["cloud"])
    async with Router(cfg, local_backends={}, env=ENV) as router:
        text = "write to alice@example.com and call 13812345678 today"
        cloud.script({"kind": "ok", "piece_chars": 5})  # placeholders arrive split across chunks
        stream = await router.open(ask(text), data_class="internal",
                                   pseudonymizer_factory=lambda: Pseudonymizer(scanner))
        assert stream.pseudonymized and stream.remote
        assert await drain(stream) == "echo: " + text
        with pytest.raises(NoAllowedUpstream, match="pseudonymi"):  # no pseudonymizer, no sending
            await router.open(ask(text), data_class="internal")
        with pytest.raises(NoAllowedUpstream, match="'internal'"):  # unclassified: the default, internal
            await router.open(ask(text))
        with pytest.raises(InvalidRequest, match="unknown data class"):
            await router.open(ask(text), data_class="secret")
        public = await router.open(ask(text), data_class="public")
        assert await drain(public) == "echo: " + text
    sent = [e["body"]["messages"][-1]["content"] for e in cloud.log()]
    assert sent == ["write to <EMAIL_ADDRESS_1> and call <CN_MOBILE_1> today", text]
    assert all(e["authorization"] == "Bearer sk-cloud" for e in cloud.log())


async def test_dead_upstream_opens_breaker_and_traffic_moves_within_threshold(cloud, replica):
    clock = FakeClock()
    replica.script(default={"kind": "status", "status": 500})
    cfg = settings({"replica": {"kind": "local", "base_url": replica.base_url, "timeouts": FAST},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])},
                   ["replica", "cloud"], breaker={"failure_threshold": 3, "open_s": 30})
    async with Router(cfg, local_backends={}, env=ENV, clock=clock) as router:
        served = [await router.open(ask(rid=str(i)), data_class="public") for i in range(10)]
        assert [s.upstream for s in served] == ["cloud"] * 10
        for s in served:
            await drain(s)
        assert len(replica.log()) == 3  # exactly the threshold, then the circuit is open
        state = {s.name: s for s in router.upstream_states()}["replica"]
        assert state.breaker == "open" and state.breaker_opened == 1
        replica.reset()  # it recovers; after the cool-down one trial request closes the circuit
        clock.now += 31
        trial = await router.open(ask(), data_class="public")
        assert trial.upstream == "replica"
        await drain(trial)
        assert {s.name: s for s in router.upstream_states()}["replica"].breaker == "closed"
    assert len(cloud.log()) == 10


async def test_unreachable_upstream_fails_over_with_bounded_attempts(cloud):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = settings({"gone": {"kind": "local", "base_url": f"http://127.0.0.1:{port}/v1", "timeouts": FAST},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])},
                   ["gone", "cloud"], breaker={"failure_threshold": 2, "open_s": 30})
    async with Router(cfg, local_backends={}, env=ENV) as router:
        for i in range(4):
            stream = await router.open(ask(rid=str(i)), data_class="public")
            assert stream.upstream == "cloud" and stream.attempts == (2 if i < 2 else 1)
            await drain(stream)
        assert {s.name: s for s in router.upstream_states()}["gone"].failures == 2


async def test_mid_stream_failure_ends_with_error_and_is_not_retried(cloud, replica):
    replica.script({"kind": "drop", "text": "one two three four", "after": 2})
    cfg = settings({"replica": {"kind": "local", "base_url": replica.base_url, "timeouts": FAST},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])},
                   ["replica", "cloud"], retry={"per_upstream": 2, "max_attempts": 4})
    async with Router(cfg, local_backends={}, env=ENV) as router:
        stream = await router.open(ask(), data_class="public")
        assert stream.upstream == "replica"
        got = []
        with pytest.raises(UpstreamError, match="dropped the stream"):
            async for chunk in stream:
                got.append(chunk.text)
        # Routed remote streams coalesce what arrives in one read: one chunk or two, the same text.
        assert got and "".join(got) == "one two "
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert {s.name: s for s in router.upstream_states()}["replica"].failures == 1
    assert len(replica.log()) == 1 and cloud.log() == []


async def test_retry_with_backoff_before_the_first_token_only(replica, cloud):
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    replica.script({"kind": "status", "status": 502}, {"kind": "drop", "after": 0})
    cfg = settings({"replica": {"kind": "local", "base_url": replica.base_url, "timeouts": FAST},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])}, ["replica", "cloud"],
                   retry={"per_upstream": 2, "max_attempts": 4, "backoff_base_s": 0.2, "backoff_max_s": 1})
    async with Router(cfg, local_backends={}, env=ENV, sleep=record_sleep, rng=random.Random(7)) as router:
        stream = await router.open(ask("third time"), data_class="public")
        assert stream.upstream == "replica" and stream.attempts == 3
        assert await drain(stream) == "echo: third time"
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4
    assert [e["outcome"] for e in replica.log()] == ["failed", "failed", "completed"]
    assert cloud.log() == []


async def test_first_token_timeout_fails_over(replica, cloud):
    replica.script({"kind": "hang"})
    cfg = settings({"replica": {"kind": "local", "base_url": replica.base_url,
                                "timeouts": {**FAST, "first_token_s": 0.5}},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])}, ["replica", "cloud"])
    async with Router(cfg, local_backends={}, env=ENV) as router:
        started = time.monotonic()
        stream = await router.open(ask(), data_class="public")
        assert stream.upstream == "cloud"
        assert time.monotonic() - started < 2.0
        await drain(stream)


async def test_no_request_lost_or_duplicated_across_failover(replica, cloud):
    n = 24
    faults = [{"kind": "status", "status": 500}, {"kind": "drop", "after": 0}, {"kind": "hang"},
              {"kind": "status", "status": 429, "retry_after": 0}]
    replica.script(*[faults[i % 4] if i % 2 == 0 else {"kind": "ok"} for i in range(n)])
    cfg = settings({"replica": {"kind": "local", "base_url": replica.base_url,
                                "timeouts": {**FAST, "first_token_s": 0.5}},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])}, ["replica", "cloud"],
                   breaker={"failure_threshold": 100, "open_s": 30})
    async with Router(cfg, local_backends={}, env=ENV) as router:
        async def one(i: int) -> str:
            stream = await router.open(ask(f"req-{i}", rid=str(i)), data_class="public")
            return await drain(stream)

        answers = await asyncio.gather(*(one(i) for i in range(n)))
    assert answers == [f"echo: req-{i}" for i in range(n)]
    done = [e["body"]["messages"][-1]["content"] for e in replica.log() + cloud.log()
            if e["outcome"] == "completed"]
    assert sorted(done) == sorted(f"req-{i}" for i in range(n))  # each exactly once, on one side
    failed_on_replica = [e for e in replica.log() if e["outcome"] != "completed"]
    assert len(failed_on_replica) == n // 2 and len(cloud.log()) == n // 2


async def test_health_probe_takes_a_down_replica_out_and_back(replica, cloud):
    cfg = settings({"replica": {"kind": "local", "base_url": replica.base_url, "timeouts": FAST},
                    "cloud": cloud_upstream(cloud, may_receive=["public"])}, ["replica", "cloud"])
    async with Router(cfg, local_backends={}, env=ENV) as router:
        replica.set_models_status(503)
        assert (await router.health.probe_once())["replica"] is False
        stream = await router.open(ask(), data_class="public")
        assert stream.upstream == "cloud"
        await drain(stream)
        assert replica.log() == []
        replica.set_models_status(200)
        assert (await router.health.probe_once())["replica"] is True
        back = await router.open(ask(), data_class="public")
        assert back.upstream == "replica"
        await drain(back)


async def test_energy_placement_cpu_for_low_load_gpu_for_bursts():
    cpu, gpu = QueueBackend("m-cpu", max_running=4), QueueBackend("m-gpu", max_running=4)
    cfg = RoutingSettings(
        upstreams={"cpu": {"kind": "local", "engine": "m-cpu", "device": "cpu"},
                   "gpu": {"kind": "local", "engine": "m-gpu", "device": "gpu"}},
        aliases={"deepseek-chat": ["gpu", "cpu"]},
        energy={"enabled": True, "cpu_max_in_flight": 1, "burst_rps": 100, "window_s": 1},
        policy={"health": {"interval_s": 0}})
    async with Router(cfg, local_backends={"m-cpu": cpu, "m-gpu": gpu}) as router:
        cpu.gate.clear()
        low = await router.open(ask(), data_class="restricted")
        assert low.upstream == "cpu"
        burst = await router.open(ask(), data_class="restricted")  # the CPU replica is busy
        assert burst.upstream == "gpu"
        cpu.gate.set()
        await drain(low)
        await drain(burst)
        again = await router.open(ask(), data_class="restricted")
        assert again.upstream == "cpu"
        await drain(again)


async def test_least_loaded_among_equal_local_replicas():
    a, b = QueueBackend("m-a", max_running=8), QueueBackend("m-b", max_running=8)
    cfg = RoutingSettings(
        upstreams={"a": {"kind": "local", "engine": "m-a"}, "b": {"kind": "local", "engine": "m-b"}},
        aliases={"deepseek-chat": ["a", "b"]}, policy={"selection": "least_loaded", "health": {"interval_s": 0}})
    async with Router(cfg, local_backends={"m-a": a, "m-b": b}) as router:
        a.gate.clear()
        b.gate.clear()
        streams = [await router.open(ask(), data_class="public") for _ in range(6)]
        assert sorted(s.upstream for s in streams).count("a") == 3
        a.gate.set()
        b.gate.set()
        for s in streams:
            await drain(s)


async def test_busy_local_without_an_allowed_remote_answers_429():
    local = QueueBackend("m", max_running=1, max_queue=0)
    cfg = RoutingSettings(upstreams={"local": {"kind": "local", "engine": "m"}},
                          aliases={"deepseek-chat": ["local"]}, policy={"health": {"interval_s": 0}})
    async with Router(cfg, local_backends={"m": local}) as router:
        local.gate.clear()
        held = await router.open(ask(), data_class="public")
        with pytest.raises(Overloaded) as info:
            await router.open(ask(), data_class="public")
        assert info.value.status_code == 429 and info.value.retry_after == 1.0
        local.gate.set()
        await drain(held)
        assert router.public_models() == ["deepseek-chat", "m"]  # in-process models stay reachable


async def test_stream_opened_in_one_task_is_consumed_in_another(cloud):
    """Starlette iterates a StreamingResponse body in a task other than the endpoint's."""
    cfg = settings({"cloud": cloud_upstream(cloud, may_receive=["public"])}, ["cloud"])
    async with Router(cfg, local_backends={}, env=ENV) as router:
        stream = await router.open(ask("across tasks"), data_class="public")
        assert await asyncio.create_task(drain(stream)) == "echo: across tasks"


async def test_missing_api_key_disables_the_remote_with_a_reason(cloud):
    cfg = settings({"cloud": cloud_upstream(cloud, may_receive=["public"])}, ["cloud"])
    async with Router(cfg, local_backends={}, env={}) as router:
        with pytest.raises(NoUpstreamAvailable, match="FAKE_CLOUD_KEY is not set"):
            await router.open(ask(), data_class="public")
    assert cloud.log() == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_non_streaming_caller_gets_the_upstream_answer_in_one_body(cloud):
    cfg = settings({"cloud": cloud_upstream(cloud)}, [{"upstream": "cloud", "model": "deepseek-chat"}])
    async with Router(cfg, local_backends={}, env=ENV) as router:
        whole = await router.open(ask("all at once", rid="w"), data_class="public", stream=False)
        assert await drain(whole) == "echo: all at once"
        streamed = await router.open(ask("piece by piece", rid="s"), data_class="public")
        assert await drain(streamed) == "echo: piece by piece"
    assert [e["body"]["stream"] for e in cloud.log()] == [False, True]
