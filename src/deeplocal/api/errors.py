"""Every error leaves as OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deeplocal.errors import DeeplocalError

log = logging.getLogger("deeplocal.api")

_HTTP_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
               429: "rate_limit_error"}


def error_body(message: str, *, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, *, type_: str | None = None, param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = error_body(message, type_=type_ or _HTTP_TYPES.get(status, "server_error"), param=param, code=code)
    return JSONResponse(body, status_code=status, headers=headers)


def from_deeplocal_error(exc: DeeplocalError) -> JSONResponse:
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers.setdefault("Retry-After", str(max(1, math.ceil(exc.retry_after))))
    return error_response(exc.status_code, exc.message, type_=exc.error_type, param=exc.param,
                          code=exc.code, headers=headers)


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """The message and `param` of a 400 for pydantic's errors (FastAPI's or a model's own)."""
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    msg = first.get("msg", "invalid value")
    return (f"{param}: {msg}" if param else msg), param


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    message, param = describe_validation(errors)
    return error_response(400, message, param=param, code="invalid_request")


def unexpected_error(request_id: str | None) -> JSONResponse:
    """A 500 for an exception nobody expected; logged with its traceback (call inside `except`)."""
    log.exception("unhandled error", extra={"request_id": request_id})
    return error_response(500, "internal server error", type_="server_error", code="internal_error")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DeeplocalError)
    async def _typed(request: Request, exc: DeeplocalError) -> JSONResponse:
        return from_deeplocal_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_request(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(exc.status_code, str(exc.detail), code=code,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error(request.headers.get("x-request-id"))
