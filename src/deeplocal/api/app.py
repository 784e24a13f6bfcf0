"""create_app(settings, services): the HTTP front door. Nothing is built at import time."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from deeplocal import __version__
from deeplocal.api import health
from deeplocal.api.deps import get_admin
from deeplocal.api.errors import install_error_handlers
from deeplocal.api.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from deeplocal.api.openai import chat, completions, embeddings, models
from deeplocal.api.services import Services
from deeplocal.config import Settings
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
    if settings.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.server.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["authorization", "content-type"])
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.server.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
