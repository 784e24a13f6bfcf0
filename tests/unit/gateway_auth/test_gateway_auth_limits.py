"""Pure rate-limit arithmetic: buckets, quotas, refunds, headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deeplocal.gateway.limits import (
    Bucket,
    QuotaExceeded,
    RateLimited,
    RateState,
    Refusal,
    RequestTooLarge,
    admit,
    format_reset,
    fresh_state,
    headers_for,
    month_of,
    refill,
    refund,
    seconds_to_next_month,
)
from deeplocal.gateway.principal import Limits

T0 = datetime(2027, 1, 15, 12, tzinfo=UTC).timestamp()


def take(state, limits, tokens=0, streams=0, now=T0):
    return admit(state, limits, tokens=tokens, streams_in_flight=streams, now=now)


def test_rpm_allows_a_burst_of_rpm_then_refuses_with_the_wait():
    limits = Limits(rpm=3)
    state = fresh_state(limits, T0)
    for _ in range(3):
        state = take(state, limits)
        assert isinstance(state, RateState)
    refused = take(state, limits)
    assert isinstance(refused, Refusal) and type(refused.error) is RateLimited
    assert refused.error.retry_after == 20.0  # one request per 20 s at 3 rpm
    assert isinstance(take(state, limits, now=T0 + 20), RateState)


def test_refill_is_continuous_capped_and_ignores_a_clock_going_back():
    bucket = Bucket(0.0, T0)
    assert refill(bucket, per_minute=60, now=T0 + 2.5).level == pytest.approx(2.5)
    assert refill(bucket, per_minute=60, now=T0 + 3600).level == 60.0
    assert refill(bucket, per_minute=60, now=T0 - 100) == bucket


def test_tpm_reserves_tokens_and_refuses_what_does_not_fit():
    limits = Limits(tpm=1000)
    state = take(fresh_state(limits, T0), limits, tokens=800)
    assert state.tokens.level == 200
    refused = take(state, limits, tokens=300)
    assert isinstance(refused, Refusal) and refused.error.retry_after == 6.0  # 100 tokens at 1000/min
    too_big = take(fresh_state(limits, T0), limits, tokens=1001)
    assert isinstance(too_big, Refusal) and isinstance(too_big.error, RequestTooLarge)
    assert too_big.error.retry_after is None and too_big.error.param == "max_tokens"


def test_monthly_quota_refuses_until_next_month_and_resets_then():
    limits = Limits(monthly_tokens=100)
    state = take(fresh_state(limits, T0), limits, tokens=90)
    refused = take(state, limits, tokens=11)
    assert isinstance(refused, Refusal) and isinstance(refused.error, QuotaExceeded)
    assert refused.error.error_type == "insufficient_quota" and refused.error.status_code == 429
    assert refused.error.retry_after == pytest.approx(seconds_to_next_month(T0), abs=1)
    next_month = datetime(2027, 2, 1, tzinfo=UTC).timestamp()
    state2 = take(state, limits, tokens=100, now=next_month)
    assert isinstance(state2, RateState) and state2.period == "2027-02" and state2.period_used == 100


def test_streams_limit_and_that_a_refusal_takes_nothing():
    limits = Limits(rpm=10, max_streams=2)
    state = fresh_state(limits, T0)
    refused = take(state, limits, streams=2)
    assert isinstance(refused, Refusal) and refused.error.retry_after == 1.0
    assert isinstance(take(state, limits, streams=1), RateState)
    assert state.requests.level == 10  # frozen state untouched


def test_refund_returns_unused_tokens_within_caps_and_charges_overruns():
    limits = Limits(tpm=1000, monthly_tokens=5000)
    state = take(fresh_state(limits, T0), limits, tokens=600)
    back = refund(state, limits, tokens=500, period=state.period)
    assert back.tokens.level == 900 and back.period_used == 100
    assert refund(back, limits, tokens=10_000, period=state.period).tokens.level == 1000  # capped
    over = refund(state, limits, tokens=-50, period=state.period)
    assert over.tokens.level == 350 and over.period_used == 650
    rolled = RateState(state.requests, state.tokens, "2027-02", 0)
    assert refund(rolled, limits, tokens=500, period="2027-01").period_used == 0  # old month's refund


def test_month_helpers_cover_december():
    dec = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC).timestamp()
    assert month_of(dec) == "2026-12" and seconds_to_next_month(dec) == pytest.approx(30)


@pytest.mark.parametrize("seconds, text", [(0.0, "0ms"), (0.02, "20ms"), (1.0, "1s"), (59.2, "1m0s"),
                                           (360.0, "6m0s"), (61.0, "1m1s")])
def test_format_reset(seconds, text):
    assert format_reset(seconds) == text


def test_headers_after_admission():
    limits = Limits(rpm=60, tpm=6000, monthly_tokens=10_000)
    state = take(fresh_state(limits, T0), limits, tokens=600)
    headers = headers_for(state, limits)
    assert headers == {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5400", "x-ratelimit-reset-tokens": "6s",
        "x-ratelimit-limit-tokens-month": "10000", "x-ratelimit-remaining-tokens-month": "9400",
    }
    assert headers_for(state, Limits()) == {}
