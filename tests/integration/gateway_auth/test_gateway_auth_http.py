"""Bad input against a real uvicorn server: keys, scopes, models, limits, bodies, headers, hosts."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from deeplocal.gateway.principal import Limits

CHAT = {"model": "smollm2", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_openai_error(response: httpx.Response, status: int, error_type: str, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (error_type, code)


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return data


def test_missing_malformed_revoked_expired_and_cross_tenant_keys_get_401(make_server):
    live = make_server()
    keys = live.gateway.keys
    good = keys.create(tenant="acme", name="ok")
    revoked = keys.create(tenant="acme", name="gone")
    keys.revoke(revoked.record.key_id)
    expired = keys.create(tenant="acme", name="old", expires_at=time.time() - 1)
    other = keys.create(tenant="globex", name="theirs")
    spliced = f"dl-{good.record.key_id}-{other.key.rsplit('-', 1)[-1]}"
    with httpx.Client(base_url=live.url) as client:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Token abc"}, auth("sk-nope"),
                        auth(revoked.key), auth(expired.key), auth(spliced), auth("x" * 5000)):
            response = client.get("/v1/models", headers=headers)
            assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "dl-" not in response.text
        assert client.get("/v1/models", headers=auth(good.key)).status_code == 200


def test_models_scopes_and_allowed_models(make_server):
    live = make_server()
    user = live.gateway.keys.create(tenant="acme", name="u", models=["smollm2", "deepseek-*"])
    admin = live.gateway.keys.create(tenant="acme", name="a", scopes=["admin"])
    with httpx.Client(base_url=live.url) as client:
        listed = client.get("/v1/models", headers=auth(user.key)).json()
        assert [m["id"] for m in listed["data"]] == ["smollm2", "deepseek-r1"]
        denied = client.post("/v1/chat/completions", headers=auth(user.key), json={**CHAT, "model": "private-model"})
        assert_openai_error(denied, 403, "permission_error", "model_not_allowed")
        assert_openai_error(client.get("/admin/usage", headers=auth(user.key)), 403, "permission_error",
                            "insufficient_scope")
        assert_openai_error(client.get("/v1/models", headers=auth(admin.key)), 403, "permission_error",
                            "insufficient_scope")
        assert client.get("/admin/usage", headers=auth(admin.key)).status_code == 200
        ok = client.post("/v1/chat/completions", headers=auth(user.key), json=CHAT)
        assert ok.status_code == 200 and ok.headers.get("x-ratelimit-limit-requests") is None


async def test_a_burst_from_several_clients_gets_exactly_rpm_through(make_server):
    live = make_server()
    key = live.gateway.keys.create(tenant="acme", name="bot", limits=Limits(rpm=5)).key

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=live.url) as client:  # a separate connection per client
            return await client.post("/v1/chat/completions", headers=auth(key), json=CHAT)

    responses = await asyncio.gather(*(one() for _ in range(12)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [429] * 7
    for response in responses:
        if response.status_code == 429:
            assert_openai_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-limit-requests"] == "5"
            assert response.headers["x-ratelimit-remaining-requests"] == "0"
        else:
            assert response.headers["x-ratelimit-limit-requests"] == "5"


async def test_quota_held_by_a_stream_in_flight_and_returned_when_it_is_cancelled(make_server):
    live = make_server()
    key = live.gateway.keys.create(tenant="acme", name="bot", limits=Limits(monthly_tokens=100, max_streams=1)).key
    long_stream = {**CHAT, "max_tokens": 80, "stream": True}   # 2 prompt + 80 reserved
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        async with client.stream("POST", "/v1/chat/completions", headers=auth(key), json=long_stream) as stream:
            assert stream.status_code == 200
            assert stream.headers["x-ratelimit-remaining-tokens-month"] == "18"
            lines = stream.aiter_lines()
            for _ in range(3):
                await anext(lines)
            over = await client.post("/v1/chat/completions", headers=auth(key), json={**CHAT, "max_tokens": 20})
            assert over.status_code == 429  # quota or the stream slot: both held by the stream
            assert over.json()["error"]["code"] in {"insufficient_quota", "rate_limit_exceeded"}
        # the client hung up mid-stream: the server settles what was produced
        rows = []
        for _ in range(200):
            rows = live.gateway.ledger.records()
            if rows:
                break
            await asyncio.sleep(0.02)
        assert [(r.status, r.prompt_tokens) for r in rows] == [("cancelled", 2)]
        assert 0 < rows[0].completion_tokens < 80
        after = await client.post("/v1/chat/completions", headers=auth(key), json={**CHAT, "max_tokens": 20})
        assert after.status_code == 200, after.text  # slot released, unused tokens refunded


async def test_quota_exhausted_mid_stream_refuses_the_next_request_not_the_stream(make_server):
    live = make_server()
    key = live.gateway.keys.create(tenant="acme", name="bot", limits=Limits(monthly_tokens=50)).key
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        async with client.stream("POST", "/v1/chat/completions", headers=auth(key),
                                 json={**CHAT, "max_tokens": 30, "stream": True}) as stream:
            refused = await client.post("/v1/chat/completions", headers=auth(key),
                                        json={**CHAT, "max_tokens": 30})
            assert_openai_error(refused, 429, "insufficient_quota", "insufficient_quota")
            assert int(refused.headers["retry-after"]) > 0
            body = "".join([line async for line in stream.aiter_lines()])
        assert body.count('"token"') == 30 and "[DONE]" in body


def test_bodies_over_the_limit_get_413(make_server):
    live = make_server(max_body_bytes=1024)
    key = live.gateway.keys.create(tenant="acme", name="bot").key
    big = {**CHAT, "messages": [{"role": "user", "content": "x " * 2000}]}
    with httpx.Client(base_url=live.url) as client:
        assert_openai_error(client.post("/v1/chat/completions", headers=auth(key), json=big), 413,
                            "invalid_request_error", "request_too_large")

        def chunks():
            for _ in range(10):
                yield b"x" * 200

        chunked = client.post("/v1/chat/completions", headers={**auth(key), "content-type": "application/json"},
                              content=chunks())
        assert_openai_error(chunked, 413, "invalid_request_error", "request_too_large")
        assert client.post("/v1/chat/completions", headers=auth(key), json=CHAT).status_code == 200


def test_oversized_and_injected_headers_are_refused(make_server):
    live = make_server()
    key = live.gateway.keys.create(tenant="acme", name="bot").key
    with httpx.Client(base_url=live.url) as client:
        big = client.get("/v1/models", headers={**auth(key), "x-filler": "a" * 10_000})
        assert_openai_error(big, 431, "invalid_request_error", "headers_too_large")
    huge = raw_request(live.port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: " + b"a" * 200_000
                       + b"\r\n\r\n")
    assert not huge.startswith(b"HTTP/1.1 200")
    for bad in (b"Bearer " + key.encode() + b"\x01", b"Bearer " + key.encode() + b"\x7f"):
        reply = raw_request(live.port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + bad
                            + b"\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400") or reply == b"", reply[:80]
    split = raw_request(live.port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                        + key.encode()[:20] + b"\rX-Admin: 1\r\nConnection: close\r\n\r\n")
    assert not split.startswith(b"HTTP/1.1 200")


def test_without_auth_only_localhost_host_headers_are_answered(make_server):
    live = make_server(auth=False)
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/v1/models", headers={"Host": f"localhost:{live.port}"}).status_code == 200
        rebound = client.get("/v1/models", headers={"Host": "attacker.example"})
        assert_openai_error(rebound, 421, "invalid_request_error", "host_not_allowed")


def test_public_bind_without_auth_refuses_to_start(make_server):
    from deeplocal.gateway.transport import ExposureError

    with pytest.raises(ExposureError, match="refusing to listen on 0.0.0.0"):
        make_server(auth=False, host="0.0.0.0")


def test_request_timeout_gives_504(make_server):
    live = make_server(request_timeout_s=0.3)
    with httpx.Client(base_url=live.url) as client:
        assert_openai_error(client.get("/slow"), 504, "server_error", "request_timeout")


def test_cors_closed_by_default_and_open_to_configured_origins(make_server):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    closed = make_server()
    with httpx.Client(base_url=closed.url) as client:
        response = client.options("/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    opened = make_server(cors_origins=("https://app.example",))
    with httpx.Client(base_url=opened.url) as client:
        good = client.options("/v1/chat/completions", headers={**preflight, "Origin": "https://app.example"})
        assert good.headers["access-control-allow-origin"] == "https://app.example"
        bad = client.options("/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in bad.headers
