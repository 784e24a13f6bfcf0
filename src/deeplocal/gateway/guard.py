"""`TransportGuard`: a pure ASGI middleware for the request-level transport limits.

- body size: a Content-Length over the limit is refused (413) before the app runs; a chunked body is
  counted as it arrives and refused once it passes the limit;
- header size and shape: total header bytes over the limit (431); control characters in values (400);
- Host allowlist (421) when auth is off on loopback, against DNS rebinding;
- request timeout: 504 if no response has started, else the response is cut off.
Refusals are OpenAI-shaped JSON errors.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")   # control characters but TAB


def _error_body(message: str, error_type: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}}).encode()


async def _refuse(send: Send, status: int, message: str, code: str, error_type: str = "invalid_request_error") -> None:
    body = _error_body(message, error_type, code)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _host_of(value: bytes) -> str:
    host = value.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class TransportGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, request_timeout_s: float,
                 max_header_bytes: int = 16 * 1024, allowed_hosts: tuple[str, ...] | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout_s = request_timeout_s
        self.max_header_bytes = max_header_bytes
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None

    def _header_problem(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, str, str] | None:
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.max_header_bytes:
            return 431, "Request headers are too large.", "headers_too_large"
        content_length = None
        for key, value in headers:
            if _CONTROL.search(value):
                return 400, "A request header contains control characters.", "invalid_header"
            if key == b"content-length":
                if content_length is not None or not value.strip().isdigit():
                    return 400, "Invalid Content-Length header.", "invalid_header"
                content_length = int(value)
            elif key == b"host" and self.allowed_hosts is not None and _host_of(value) not in self.allowed_hosts:
                return 421, "This server only answers requests addressed to localhost.", "host_not_allowed"
        if content_length is not None and content_length > self.max_body_bytes:
            return 413, f"Request body is larger than {self.max_body_bytes} bytes.", "request_too_large"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._header_problem(scope.get("headers", []))
        if problem is not None:
            await _refuse(send, *problem)
            return
        started = False   # the client has seen a response start
        refused = False   # we answered for the app: drop whatever it sends from now on
        received = 0

        async def limited_receive() -> Message:
            nonlocal received, refused, started
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not started:  # answer now; the app sees the client gone, whatever it catches
                        started = refused = True
                        await _refuse(send, 413, f"Request body is larger than {self.max_body_bytes} bytes.",
                                      "request_too_large")
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        deadline = asyncio.timeout(self.request_timeout_s)
        try:
            async with deadline:
                await self.app(scope, limited_receive, guarded_send)
        except TimeoutError:
            if not deadline.expired():
                raise
            if not started:
                await _refuse(send, 504, f"The request took longer than {self.request_timeout_s:g} s.",
                              "request_timeout", error_type="server_error")
        except Exception:
            if not refused:
                raise
