"""Rate limits and quotas as pure functions of frozen state, plus the 429 errors and headers.

Per key (in fact per `quota_id`, shared with the key's rotations):
- requests/min and tokens/min: token buckets, capacity = the per-minute limit, refilled continuously;
- tokens per calendar month (UTC): a counter reset when the month changes;
- concurrent streams: counted by the store (leases), checked here.
A request reserves prompt + max_tokens up front; settling refunds what it did not use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from deeplocal.errors import DeeplocalError
from deeplocal.gateway.principal import Limits


class RateLimited(DeeplocalError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class RequestTooLarge(RateLimited):
    """The request alone needs more tokens than the per-minute limit: no wait will help."""

    code = "request_too_large"


@dataclass(frozen=True, slots=True)
class Bucket:
    level: float  # units available now; negative after an overrun is settled
    at: float     # when `level` was computed


@dataclass(frozen=True, slots=True)
class RateState:
    requests: Bucket
    tokens: Bucket
    period: str       # "YYYY-MM" of `period_used`
    period_used: int


@dataclass(frozen=True, slots=True)
class Refusal:
    error: RateLimited


def month_of(now: float) -> str:
    moment = datetime.fromtimestamp(now, UTC)
    return f"{moment.year:04d}-{moment.month:02d}"   # strftime("%Y-%m"), a few times faster


def seconds_to_next_month(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp() - now


def refill(bucket: Bucket, *, per_minute: int, now: float) -> Bucket:
    if now <= bucket.at:  # a clock that went backwards never mints units
        return bucket
    return Bucket(min(float(per_minute), bucket.level + (now - bucket.at) * per_minute / 60.0), now)


def seconds_until(bucket: Bucket, *, need: float, per_minute: int) -> float:
    return max(0.0, (need - bucket.level) * 60.0 / per_minute)


def fresh_state(limits: Limits, now: float) -> RateState:
    return RateState(requests=Bucket(float(limits.rpm or 0), now), tokens=Bucket(float(limits.tpm or 0), now),
                     period=month_of(now), period_used=0)


def current(state: RateState, limits: Limits, now: float) -> RateState:
    """The state as of `now`: buckets refilled, the month rolled over."""
    requests = refill(state.requests, per_minute=limits.rpm, now=now) if limits.rpm else state.requests
    tokens = refill(state.tokens, per_minute=limits.tpm, now=now) if limits.tpm else state.tokens
    period = month_of(now)
    used = state.period_used if state.period == period else 0
    return RateState(requests, tokens, period, used)


def _retry(seconds: float) -> float:
    return float(max(1, math.ceil(seconds)))


def admit(state: RateState, limits: Limits, *, tokens: int, streams_in_flight: int,
          now: float) -> RateState | Refusal:
    """Take one request and `tokens` tokens, or say which limit refuses and for how long."""
    state = current(state, limits, now)
    if limits.max_streams is not None and streams_in_flight >= limits.max_streams:
        return Refusal(RateLimited(f"Too many concurrent requests for this key (limit {limits.max_streams}).",
                                   retry_after=1.0))
    if limits.rpm and state.requests.level < 1.0:
        wait = _retry(seconds_until(state.requests, need=1.0, per_minute=limits.rpm))
        return Refusal(RateLimited(f"Rate limit reached: {limits.rpm} requests per minute.", retry_after=wait))
    if limits.tpm and tokens > limits.tpm:
        return Refusal(RequestTooLarge(
            f"Request too large: it may use {tokens} tokens (prompt + max_tokens) but the limit is "
            f"{limits.tpm} tokens per minute. Lower max_tokens or the prompt.", param="max_tokens"))
    if limits.tpm and state.tokens.level < tokens:
        wait = _retry(seconds_until(state.tokens, need=tokens, per_minute=limits.tpm))
        return Refusal(RateLimited(f"Rate limit reached: {limits.tpm} tokens per minute.", retry_after=wait))
    if limits.monthly_tokens is not None and state.period_used + tokens > limits.monthly_tokens:
        left = max(0, limits.monthly_tokens - state.period_used)
        return Refusal(QuotaExceeded(
            f"Monthly token quota exhausted: {left} of {limits.monthly_tokens} tokens left, this request may "
            f"use {tokens}.", retry_after=_retry(seconds_to_next_month(now))))
    return RateState(
        requests=replace(state.requests, level=state.requests.level - 1.0) if limits.rpm else state.requests,
        tokens=replace(state.tokens, level=state.tokens.level - tokens) if limits.tpm else state.tokens,
        period=state.period, period_used=state.period_used + tokens,
    )


def refund(state: RateState, limits: Limits, *, tokens: int, period: str) -> RateState:
    """Give back `tokens` reserved but not used (negative: charge an overrun)."""
    level = min(float(limits.tpm), state.tokens.level + tokens) if limits.tpm else state.tokens.level
    used = max(0, state.period_used - tokens) if state.period == period else state.period_used
    return replace(state, tokens=replace(state.tokens, level=level), period_used=used)


def format_reset(seconds: float) -> str:
    """OpenAI's reset format: '20ms', '1s', '6m0s'."""
    if seconds < 1.0:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def headers_for(state: RateState, limits: Limits) -> dict[str, str]:
    """x-ratelimit-* headers for a state (after admission or at refusal)."""
    headers: dict[str, str] = {}
    if limits.rpm:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, math.floor(state.requests.level)))
        headers["x-ratelimit-reset-requests"] = format_reset(
            seconds_until(state.requests, need=limits.rpm, per_minute=limits.rpm))
    if limits.tpm:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, math.floor(state.tokens.level)))
        headers["x-ratelimit-reset-tokens"] = format_reset(
            seconds_until(state.tokens, need=limits.tpm, per_minute=limits.tpm))
    if limits.monthly_tokens is not None:
        headers["x-ratelimit-limit-tokens-month"] = str(limits.monthly_tokens)
        headers["x-ratelimit-remaining-tokens-month"] = str(max(0, limits.monthly_tokens - state.period_used))
    return headers
