"""create_app(settings, services): the HTTP front door. Nothing is built at import time."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from deeplocal import __version__
from deeplocal.api import health
from deeplocal.api.deps import get_admin
from deeplocal.api.errors import install_error_handlers
from deeplocal.api.fastroutes import GenerationRoutes
from deeplocal.api.middleware import RequestIdMiddleware
from deeplocal.api.openai import chat, completions, embeddings, models
from deeplocal.api.openai.protocol import ChatCompletionRequest, CompletionRequest
from deeplocal.api.services import Services
from deeplocal.config import Settings
from deeplocal.gateway.guard import TransportGuard
from deeplocal.gateway.transport import allowed_hosts, cors_options
from deeplocal.metrics.http import make_metrics_router, start_metrics_server


def create_app(settings: Settings, services: Services, *, manage_backends: bool = True) -> FastAPI:
    """Build the app. With manage_backends, backends start and stop with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        side = None
        if manage_backends:
            for served in services.models.all():
                await served.backend.start()
        if services.router is not None:
            await services.router.start()
        if services.metrics is not None and settings.metrics.port is not None:
            side = start_metrics_server(services.metrics, settings.metrics.host, settings.metrics.port)
            services.state["metrics_url"] = side.url
        try:
            yield
        finally:
            if side is not None:
                side.close()
            if services.router is not None:
                await services.router.stop()
            if manage_backends:
                for served in services.models.all():
                    await served.backend.stop()
            if services.metrics is not None:
                services.metrics.close()
            # Requests have drained (uvicorn waits for them first): write what they left queued.
            if services.gateway is not None:
                services.gateway.close()
            if services.privacy is not None and hasattr(services.privacy, "close"):
                services.privacy.close()

    app = FastAPI(title="deeplocal", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.services = services
    services.state.setdefault("settings", settings)
    app.state.settings = settings
    install_error_handlers(app)
    for module in (health, chat, completions, embeddings, models):
        app.include_router(module.router)
    if services.metrics is not None:
        guard = [Depends(get_admin)] if settings.metrics.require_admin else []
        app.include_router(make_metrics_router(services.metrics, dependencies=guard))
    extra_routers = services.state.get("routers", ())
    for r in extra_routers:
        app.include_router(r)
    # Innermost: the hot generation routes skip FastAPI's per-request machinery (api/fastroutes.py).
    app.add_middleware(GenerationRoutes, services=services, routes={
        "/v1/chat/completions": (ChatCompletionRequest, chat.create_chat_completion),
        "/v1/completions": (CompletionRequest, completions.create_completion),
    })
    cors = cors_options(settings.server)
    if cors is not None:
        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_asgi(settings: Settings, services: Services) -> ASGIApp:
    """The app behind the transport guard (body and header limits, Host check, overall deadline)."""
    auth = services.gateway is not None and services.gateway.enabled
    # The per-generation limit (a clean 504 or SSE error) fires first; the guard is the backstop.
    return TransportGuard(create_app(settings, services), max_body_bytes=settings.server.max_body_bytes,
                          request_timeout_s=settings.server.request_timeout_s + 5,
                          allowed_hosts=allowed_hosts(settings.server, auth_enabled=auth))
