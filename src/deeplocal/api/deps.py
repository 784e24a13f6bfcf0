"""FastAPI dependencies as Annotated aliases: the services, the caller, the request id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from deeplocal.api.services import Services


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in its thread pool (a thread hop)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True, slots=True)
class Caller:
    request_id: str
    principal: Any            # gateway Principal, or None when no gateway is configured
    data_class_header: str | None


async def resolve_caller(services: Services, *, request_id: str, authorization: str | None,
                         data_class_header: str | None, scope: str = "inference") -> Caller:
    """Authenticate the bearer key (when a gateway is configured) and check it carries `scope`."""
    principal = None
    if services.gateway is not None:
        principal = await services.gateway.authenticate(authorization)
        services.gateway.require_scope(principal, scope)
    return Caller(request_id=request_id, principal=principal, data_class_header=data_class_header)


async def get_caller(request: Request) -> Caller:
    return await resolve_caller(request.app.state.services, request_id=request.state.request_id,
                                authorization=request.headers.get("authorization"),
                                data_class_header=request.headers.get("x-data-class"))


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_admin(request: Request) -> Caller:
    return await resolve_caller(request.app.state.services, request_id=request.state.request_id,
                                authorization=request.headers.get("authorization"), data_class_header=None,
                                scope="admin")


AdminDep = Annotated[Caller, Depends(get_admin)]
