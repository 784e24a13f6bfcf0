"""The Gateway facade on a real SQLite file: bad keys, scopes, models, limits, settlement."""

from __future__ import annotations

import asyncio

import pytest

from deeplocal.gateway.auth import AuthenticationError, ModelNotAllowed, PermissionDenied
from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.keys import KeyStore, parse_key
from deeplocal.gateway.limits import QuotaExceeded, RateLimited
from deeplocal.gateway.principal import SCOPES, Limits
from deeplocal.gateway.service import Gateway, InvalidUsage
from deeplocal.store.db import make_engine


def bearer(key: str) -> str:
    return f"Bearer {key}"


async def test_a_valid_key_resolves_to_its_principal(gateway):
    created = gateway.keys.create(tenant="acme", name="bot", models=["smol*"], data_class="internal",
                                  limits=Limits(rpm=5))
    principal = await gateway.authenticate(bearer(created.key))
    assert principal.key_id == created.record.key_id and principal.tenant == "acme"
    assert principal.scopes == {"inference"} and principal.data_class == "internal"
    assert principal.limits == Limits(rpm=5)
    assert (await gateway.authenticate("bearer   " + created.key)).key_id == principal.key_id


@pytest.mark.parametrize("header", [
    None, "", "   ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer sk-1234", "dl-abc",
    "Bearer dl-0123456789abcdef-" + "a" * 43,              # well formed, unknown id
    "Bearer dl-0123456789abcdef-" + "a" * 43 + "\r\nX-Admin: 1",  # header injection
    "Bearer dl-0123456789abcdef-" + "a" * 4000,            # oversized
    "Bearer dl-0123456789abcdef-" + "é" * 43,              # non-ASCII
    "Bearer dl-0123456789abcdef-" + "a" * 42 + "\x00",
])
async def test_missing_and_malformed_keys_are_401(gateway, header):
    with pytest.raises(AuthenticationError) as info:
        await gateway.authenticate(header)
    error = info.value
    assert error.status_code == 401 and error.code == "invalid_api_key"
    assert error.headers["WWW-Authenticate"].startswith("Bearer")
    assert "0123456789abcdef" not in error.message and "sk-1234" not in error.message  # nothing echoed


async def test_wrong_secret_and_swapped_tenant_secrets_are_401(gateway):
    a = gateway.keys.create(tenant="acme", name="a")
    b = gateway.keys.create(tenant="globex", name="b")
    secret_b = parse_key(b.key).secret
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        await gateway.authenticate(bearer(f"dl-{a.record.key_id}-{secret_b}"))
    flipped = a.key[:-1] + ("x" if a.key[-1] != "x" else "y")
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        await gateway.authenticate(bearer(flipped))
    assert (await gateway.authenticate(bearer(b.key))).tenant == "globex"


async def test_revoked_and_expired_keys_are_401_and_say_why(gateway, clock):
    revoked = gateway.keys.create(tenant="acme", name="r")
    expiring = gateway.keys.create(tenant="acme", name="e", expires_at=clock() + 30)
    gateway.keys.revoke(revoked.record.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await gateway.authenticate(bearer(revoked.key))
    await gateway.authenticate(bearer(expiring.key))  # now cached
    clock.advance(30)
    with pytest.raises(AuthenticationError, match="expired"):  # expiry needs no cache refresh
        await gateway.authenticate(bearer(expiring.key))


async def test_revocation_by_another_process_lands_within_the_cache_ttl(gateway, db_url, clock):
    created = gateway.keys.create(tenant="acme", name="bot")
    await gateway.authenticate(bearer(created.key))
    other = make_engine(db_url)  # e.g. `deeplocal keys revoke` in another process
    KeyStore(other, clock=clock).revoke(created.record.key_id)
    other.dispose()
    await gateway.authenticate(bearer(created.key))  # still cached
    clock.advance(gateway.settings.key_cache_ttl_s)
    with pytest.raises(AuthenticationError, match="revoked"):
        await gateway.authenticate(bearer(created.key))


async def test_forget_key_makes_local_revocation_immediate(gateway):
    created = gateway.keys.create(tenant="acme", name="bot")
    await gateway.authenticate(bearer(created.key))
    gateway.keys.revoke(created.record.key_id)
    gateway.forget_key(created.record.key_id)
    with pytest.raises(AuthenticationError):
        await gateway.authenticate(bearer(created.key))


async def test_scopes_and_models(gateway):
    user = await gateway.authenticate(bearer(gateway.keys.create(
        tenant="acme", name="u", models=["deepseek-*", "smollm2"]).key))
    admin = await gateway.authenticate(bearer(gateway.keys.create(
        tenant="acme", name="a", scopes=["admin", "inference"]).key))
    with pytest.raises(PermissionDenied) as info:
        gateway.require_scope(user, "admin")
    assert info.value.status_code == 403
    gateway.require_scope(admin, "admin")
    gateway.require_model(user, "deepseek-r1")
    with pytest.raises(ModelNotAllowed) as info:
        gateway.require_model(user, "llama-70b")
    assert info.value.status_code == 403 and info.value.code == "model_not_allowed"
    models = ["deepseek-v3", "llama-70b", "smollm2", "smollm2-big"]
    assert gateway.visible_models(user, models) == ["deepseek-v3", "smollm2"]
    assert gateway.visible_models(admin, models) == models


async def test_auth_off_gives_the_local_principal_and_counts_nothing(db_url, clock):
    gw = Gateway(GatewaySettings(auth=False), db_url, clock=clock)
    try:
        principal = await gw.authenticate(None)
        assert principal.scopes == SCOPES and principal.may_use("anything")
        reservation = await gw.reserve(principal, model="m", prompt_tokens=10, max_tokens=10)
        assert reservation.grant is None and gw.rate_limit_headers(reservation) == {}
        await gw.settle(reservation, prompt_tokens=10, completion_tokens=3, upstream="local", status="ok")
        assert [(r.key_id, r.completion_tokens) for r in gw.ledger.records()] == [("local", 3)]
    finally:
        gw.close()


async def principal_with(gateway, **limits):
    return await gateway.authenticate(bearer(gateway.keys.create(tenant="acme", name="bot",
                                                                 limits=Limits(**limits)).key))


async def test_rpm_burst_then_429_with_retry_after_and_headers(gateway, clock):
    principal = await principal_with(gateway, rpm=3)
    for _ in range(3):
        await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)
    with pytest.raises(RateLimited) as info:
        await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)
    error = info.value
    assert error.status_code == 429 and error.retry_after == 20.0
    assert error.headers["Retry-After"] == "20"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    clock.advance(20)
    await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)


async def test_quota_reserved_up_front_and_settled_with_actual_usage(gateway):
    principal = await principal_with(gateway, monthly_tokens=100)
    first = await gateway.reserve(principal, model="m", prompt_tokens=10, max_tokens=60)
    assert gateway.rate_limit_headers(first)["x-ratelimit-remaining-tokens-month"] == "30"
    with pytest.raises(QuotaExceeded):  # quota is held by the stream in flight
        await gateway.reserve(principal, model="m", prompt_tokens=10, max_tokens=60)
    await gateway.settle(first, prompt_tokens=10, completion_tokens=5, upstream="local", status="cancelled")
    second = await gateway.reserve(principal, model="m", prompt_tokens=10, max_tokens=60)
    assert gateway.rate_limit_headers(second)["x-ratelimit-remaining-tokens-month"] == "15"
    await gateway.settle(second, prompt_tokens=10, completion_tokens=60, upstream="local", status="length")
    await gateway.settle(second, prompt_tokens=10, completion_tokens=60, upstream="local", status="length")
    rows = sorted((r.status, r.prompt_tokens, r.completion_tokens) for r in gateway.ledger.records())
    assert rows == [("cancelled", 10, 5), ("length", 10, 60)]  # the second settle was a no-op
    with pytest.raises(QuotaExceeded):
        await gateway.reserve(principal, model="m", prompt_tokens=10, max_tokens=6)


async def test_concurrent_streams_limit_and_release(gateway):
    principal = await principal_with(gateway, max_streams=2)
    held = [await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1) for _ in range(2)]
    with pytest.raises(RateLimited, match="concurrent"):
        await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)
    await gateway.settle(held[0], prompt_tokens=1, completion_tokens=0, upstream="local", status="cancelled")
    await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)


async def test_a_crashed_process_leases_expire(gateway, clock):
    principal = await principal_with(gateway, max_streams=1)
    await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)  # never settled
    with pytest.raises(RateLimited):
        await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)
    clock.advance(gateway.settings.stream_lease_s + 1)
    await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)


async def test_settle_completes_even_when_its_caller_is_cancelled(gateway):
    principal = await principal_with(gateway, tpm=100, max_streams=1)
    reservation = await gateway.reserve(principal, model="m", prompt_tokens=10, max_tokens=80)
    task = asyncio.create_task(gateway.settle(reservation, prompt_tokens=10, completion_tokens=1,
                                              upstream="local", status="cancelled"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    again = None
    for _ in range(100):  # the shielded write finishes on the db thread
        try:
            again = await gateway.reserve(principal, model="m", prompt_tokens=10, max_tokens=70)
            break
        except RateLimited:
            await asyncio.sleep(0.01)
    assert again is not None


async def test_rotated_key_shares_the_old_keys_counters(gateway):
    old = gateway.keys.create(tenant="acme", name="bot", limits=Limits(monthly_tokens=50))
    first = await gateway.reserve(await gateway.authenticate(bearer(old.key)), model="m", prompt_tokens=0,
                                  max_tokens=40)
    await gateway.settle(first, prompt_tokens=0, completion_tokens=40, upstream="local", status="ok")
    new = gateway.keys.rotate(old.record.key_id)
    with pytest.raises(QuotaExceeded):
        await gateway.reserve(await gateway.authenticate(bearer(new.key)), model="m", prompt_tokens=0,
                              max_tokens=20)


async def test_negative_token_counts_are_refused(gateway):
    principal = await principal_with(gateway, rpm=5)
    with pytest.raises(InvalidUsage):
        await gateway.reserve(principal, model="m", prompt_tokens=-1, max_tokens=5)


def test_key_cache_is_bounded_and_expires_entries(clock):
    from deeplocal.gateway.auth import KeyCache

    cache = KeyCache(ttl_s=5, negative_ttl_s=1, size=2, clock=clock)
    cache.put("a", None)
    assert cache.get("a") == (True, None)
    clock.advance(1)
    assert cache.get("a") == (False, None)  # negative entries live shorter
    for key_id in ("a", "b", "c"):
        cache.put(key_id, None)
    assert cache.get("a") == (False, None) and cache.get("c") == (True, None)  # LRU eviction
    KeyCache(ttl_s=0, negative_ttl_s=0, size=10, clock=clock).put("x", None)  # disabled: no error
