"""Pure routing policy: data classification, candidate order, overflow, energy placement, backoff."""

from __future__ import annotations

import random

import pytest

from deeplocal.routing.config import EnergySettings, PolicySettings, RetrySettings
from deeplocal.routing.policy import Candidate, backoff_s, plan_route, predicted_ttft_s

ALL = frozenset({"public", "internal", "restricted"})
OUT = frozenset({"public", "internal"})


def local(name: str, **kw) -> Candidate:
    return Candidate(upstream=name, model="m", remote=False, allowed=ALL, **kw)


def remote(name: str, **kw) -> Candidate:
    kw.setdefault("allowed", OUT)
    return Candidate(upstream=name, model="m", remote=True, **kw)


def plan(cands, data_class="public", *, policy=None, energy=None, rps=0.0, pseudo=True, seed=0):
    return plan_route(cands, data_class=data_class, can_pseudonymize=pseudo, policy=policy or PolicySettings(),
                      energy=energy or EnergySettings(), arrival_rps=rps, rng=random.Random(seed))


def names(p) -> list[str]:
    return [c.upstream for c in p.order]


def test_local_first_whatever_the_alias_order():
    assert names(plan([remote("cloud"), local("a"), local("b")])) == ["a", "b", "cloud"]


def test_restricted_never_reaches_a_remote_that_may_not_receive_it():
    p = plan([local("a", breaker_allows=False), remote("cloud")], "restricted")
    assert names(p) == []
    assert p.refused_for_data == ("cloud",)
    assert ("a", "circuit open") in p.skipped
    trusted = remote("vpc", allowed=ALL)
    assert names(plan([local("a"), remote("cloud"), trusted], "restricted")) == ["a", "vpc"]


def test_internal_needs_a_pseudonymizer_to_go_out():
    p = plan([remote("cloud")], "internal", pseudo=False)
    assert names(p) == [] and p.refused_for_data == ("cloud",)
    assert names(plan([remote("cloud")], "internal")) == ["cloud"]
    assert names(plan([local("a")], "internal", pseudo=False)) == ["a"]


def test_overflow_puts_a_busy_local_behind_the_remote():
    policy = PolicySettings(overflow={"max_queue": 2})
    p = plan([local("a", waiting=2), remote("cloud")], policy=policy)
    assert names(p) == ["cloud", "a"] and p.overflowed
    p = plan([local("a", waiting=1), remote("cloud")], policy=policy)
    assert names(p) == ["a", "cloud"] and not p.overflowed
    p = plan([local("a", waiting=9)], policy=policy)  # nowhere to overflow to: queue locally
    assert names(p) == ["a"] and not p.overflowed
    p = plan([local("a", waiting=9), remote("cloud")], "restricted", policy=policy)
    assert names(p) == ["a"]


def test_overflow_on_predicted_ttft():
    policy = PolicySettings(overflow={"max_queue": 100, "ttft_slo_s": 2.0})
    slow = local("a", waiting=3, ttft_ewma_s=0.6)
    assert predicted_ttft_s(slow) == pytest.approx(2.4)
    assert names(plan([slow, remote("cloud")], policy=policy)) == ["cloud", "a"]
    assert names(plan([local("a", waiting=2, ttft_ewma_s=0.6), remote("cloud")], policy=policy)) == ["a", "cloud"]
    assert names(plan([local("a", waiting=50), remote("cloud")], policy=policy)) == ["a", "cloud"]


def test_unhealthy_disabled_and_incapable_are_skipped_with_reasons():
    p = plan([local("a", healthy=False), local("b", disabled="no key"), local("c", capable=False), local("d")])
    assert names(p) == ["d"]
    reasons = dict(p.skipped)
    assert reasons == {"a": "failing health checks", "b": "disabled: no key",
                       "c": "lacks a capability this request needs"}


def test_least_loaded_and_weighted_selection():
    policy = PolicySettings(selection="least_loaded")
    a, b, c = local("a", running=3), local("b", running=1), local("c", running=2, weight=4)
    assert names(plan([a, b, c], policy=policy)) == ["c", "b", "a"]
    weighted = PolicySettings(selection="weighted")
    firsts = [names(plan([local("x", weight=9), local("y", weight=1)], policy=weighted, seed=s))[0]
              for s in range(400)]
    assert 0.85 < firsts.count("x") / len(firsts) < 0.95


def test_energy_placement():
    energy = EnergySettings(enabled=True, cpu_max_in_flight=2, burst_rps=5)
    gpu, cpu = local("gpu", device="gpu"), local("cpu", device="cpu", running=1)
    assert names(plan([gpu, cpu], energy=energy, rps=1)) == ["cpu", "gpu"]
    assert names(plan([gpu, cpu], energy=energy, rps=6)) == ["gpu", "cpu"]  # a burst
    busy_cpu = local("cpu", device="cpu", running=2)
    assert names(plan([gpu, busy_cpu], energy=energy, rps=1)) == ["gpu", "cpu"]
    assert names(plan([gpu, cpu], rps=1)) == ["gpu", "cpu"]  # disabled: alias order


def test_backoff_is_exponential_with_jitter_and_honours_retry_after():
    retry = RetrySettings(backoff_base_s=0.1, backoff_max_s=1.0)
    rng = random.Random(3)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (5, 1.0)]:
        delays = [backoff_s(attempt, retry, rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
    assert backoff_s(0, retry, rng, retry_after=0.5) == 0.5
    assert backoff_s(0, retry, rng, retry_after=30) == 1.0


def test_pseudonymize_request_covers_prompt_messages_and_tool_arguments():
    from deeplocal.engine.types import GenerationRequest, Message
    from deeplocal.gateway.pii import PiiScanner, Pseudonymizer
    from deeplocal.routing.stream import pseudonymize_request

    ps = Pseudonymizer(PiiScanner())
    call = {"id": "c1", "type": "function",
            "function": {"name": "mail", "arguments": '{"to": "alice@example.com"}'}}
    req = GenerationRequest(request_id="r", model="m", messages=(
        Message("user", "mail alice@example.com"), Message("assistant", "", tool_calls=(call,)),
        Message("tool", "sent to alice@example.com", tool_call_id="c1")))
    out = pseudonymize_request(req, ps)
    assert [m.content for m in out.messages] == ["mail <EMAIL_ADDRESS_1>", "", "sent to <EMAIL_ADDRESS_1>"]
    assert out.messages[1].tool_calls[0]["function"]["arguments"] == '{"to": "<EMAIL_ADDRESS_1>"}'
    assert req.messages[0].content == "mail alice@example.com"  # the original is untouched
