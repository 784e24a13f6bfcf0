"""A small Starlette app wired the way the API wires the gateway, served by real uvicorn on port 0."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from deeplocal.config import ServerSettings
from deeplocal.errors import DeeplocalError
from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.guard import TransportGuard
from deeplocal.gateway.service import Gateway
from deeplocal.gateway.transport import allowed_hosts, check_exposure, cors_options, uvicorn_kwargs

MODELS = ["smollm2", "deepseek-r1", "private-model"]
TOKEN_DELAY_S = 0.02


def error_response(exc: DeeplocalError) -> JSONResponse:
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers.setdefault("Retry-After", str(int(exc.retry_after)))
    return JSONResponse({"error": {"message": exc.message, "type": exc.error_type, "param": exc.param,
                                   "code": exc.code}}, status_code=exc.status_code, headers=headers)


def build_app(gateway: Gateway, server: ServerSettings) -> Any:
    async def models(request: Request) -> Response:
        principal = await gateway.authenticate(request.headers.get("authorization"))
        gateway.require_scope(principal, "inference")
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"}
                                                       for m in gateway.visible_models(principal, MODELS)]})

    async def usage(request: Request) -> Response:
        principal = await gateway.authenticate(request.headers.get("authorization"))
        gateway.require_scope(principal, "admin")
        return JSONResponse({"rows": len(gateway.ledger.records())})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(5)
        return JSONResponse({})

    async def chat(request: Request) -> Response:
        principal = await gateway.authenticate(request.headers.get("authorization"))
        gateway.require_scope(principal, "inference")
        body = await request.json()
        model, max_tokens = body["model"], int(body.get("max_tokens", 16))
        gateway.require_model(principal, model)
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        reservation = await gateway.reserve(principal, model=model, prompt_tokens=prompt_tokens,
                                            max_tokens=max_tokens)
        headers = gateway.rate_limit_headers(reservation)

        async def tokens() -> Any:
            produced, status = 0, "cancelled"
            try:
                for i in range(max_tokens):
                    await asyncio.sleep(TOKEN_DELAY_S)
                    produced += 1
                    yield f"data: {{\"token\": {i}}}\n\n"
                status = "length"
                yield "data: [DONE]\n\n"
            finally:
                await gateway.settle(reservation, prompt_tokens=prompt_tokens, completion_tokens=produced,
                                     upstream="fake", status=status)

        if body.get("stream"):
            return StreamingResponse(tokens(), media_type="text/event-stream", headers=headers)
        await gateway.settle(reservation, prompt_tokens=prompt_tokens, completion_tokens=1, upstream="fake",
                             status="ok")
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}, headers=headers)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DeeplocalError)
        return error_response(exc)

    app: Any = Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"]),
                                 Route("/admin/usage", usage), Route("/slow", slow)],
                         exception_handlers={DeeplocalError: on_error})
    cors = cors_options(server)
    if cors:
        app = CORSMiddleware(app, **cors)
    return TransportGuard(app, max_body_bytes=server.max_body_bytes, request_timeout_s=server.request_timeout_s,
                          max_header_bytes=8 * 1024, allowed_hosts=allowed_hosts(server, auth_enabled=gateway.enabled))


class LiveServer:
    def __init__(self, gateway: Gateway, server: ServerSettings):
        check_exposure(server, auth_enabled=gateway.enabled)
        self.gateway = gateway
        scheme = "https" if server.tls_cert else "http"
        config = uvicorn.Config(build_app(gateway, server), host=server.host, port=0, log_level="warning",
                                lifespan="off", **uvicorn_kwargs(server))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def make_server(tmp_path) -> Iterator[Any]:
    started: list[tuple[LiveServer, Gateway]] = []

    def make(*, auth: bool = True, **server_fields: Any) -> LiveServer:
        gateway = Gateway(GatewaySettings(auth=auth), f"sqlite:///{tmp_path / 'deeplocal.db'}")
        live = LiveServer(gateway, ServerSettings(**server_fields))
        started.append((live, gateway))
        return live

    yield make
    for live, gateway in started:
        live.close()
        gateway.close()
