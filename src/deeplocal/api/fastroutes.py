"""`GenerationRoutes`: the hot POST routes (/v1/chat/completions, /v1/completions) without FastAPI's
per-request machinery.

FastAPI's route matching, dependency solving and body handling cost about as much CPU per request as
the whole proxy path behind them (bench/gateway.py, py-spy). This ASGI middleware sits inside the
request-id and CORS middleware and answers those two routes itself: it reads the body, validates it
with the route's pydantic model straight from JSON, authenticates the caller exactly like the
FastAPI dependency (`resolve_caller`) and calls the same endpoint function. Errors get the same
OpenAI-shaped responses as the app's exception handlers. Every other request, and every method but
POST, goes on to FastAPI; the routes stay declared there too, for the OpenAPI schema and for apps
built without this middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from deeplocal.api.deps import Caller, resolve_caller
from deeplocal.api.errors import from_deeplocal_error, invalid_request, unexpected_error
from deeplocal.api.services import Services
from deeplocal.errors import DeeplocalError

Endpoint = Callable[[Any, Services, Caller], Awaitable[Response]]


class GenerationRoutes:
    def __init__(self, app: ASGIApp, *, services: Services, routes: dict[str, tuple[type[BaseModel], Endpoint]]):
        """`routes`: path -> (the body's pydantic model, the endpoint `(body, services, caller)`)."""
        self.app = app
        self.services = services
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        headers = _headers(scope["headers"]) if route is not None else None
        if route is None or headers is None:
            # Not ours, or a body not declared JSON: FastAPI answers (400 for a form or text/plain body,
            # which a browser would send cross-site without a preflight).
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        if raw is None:   # the client went away before sending its whole body
            return
        response = await self._respond(scope, route, raw, *headers)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, route: tuple[type[BaseModel], Endpoint], raw: bytes,
                       authorization: str | None, data_class: str | None) -> Response:
        model, endpoint = route
        request_id = scope["state"]["request_id"]
        try:
            caller = await resolve_caller(self.services, request_id=request_id, authorization=authorization,
                                          data_class_header=data_class)
            try:
                body = model.model_validate_json(raw)
            except ValidationError as exc:
                return invalid_request(exc.errors(include_url=False))
            return await endpoint(body, self.services, caller)
        except DeeplocalError as exc:
            return from_deeplocal_error(exc)
        except Exception:   # noqa: BLE001  # the app's handler for the unexpected does the same
            return unexpected_error(request_id)


async def _read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _headers(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None] | None:
    """The Authorization and X-Data-Class values (the first of each, as Starlette reads them), or None
    unless the body is declared JSON (`application/json` or `application/*+json`, FastAPI's rule)."""
    authorization = data_class = content_type = None
    for key, value in headers:
        if key == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif key == b"x-data-class" and data_class is None:
            data_class = value.decode("latin-1")
        elif key == b"content-type" and content_type is None:
            content_type = value
    if content_type is None:
        return None
    main, _, sub = content_type.split(b";", 1)[0].strip().lower().partition(b"/")
    if main != b"application" or not (sub == b"json" or sub.endswith(b"+json")):
        return None
    return authorization, data_class
