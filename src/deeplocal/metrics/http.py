"""GET /metrics on the API (an APIRouter) or on a separate port (a small threaded server)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import start_http_server
from prometheus_client.exposition import choose_encoder

from deeplocal.metrics.registry import Metrics


def make_metrics_router(metrics: Metrics, *, path: str | None = None,
                        dependencies: Sequence[Any] = ()) -> APIRouter:
    """A router with `GET <path>`. Pass `dependencies=[Depends(require_admin)]` to guard it.

    The handler is a plain `def`, so FastAPI runs it in its thread pool: a slow NVML call never
    blocks the event loop that streams tokens.
    """
    router = APIRouter(dependencies=list(dependencies))
    route = path or metrics.settings.path

    @router.get(route, include_in_schema=False)
    def scrape(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(content=encoder(metrics.registry), media_type=content_type)

    return router


@dataclass
class MetricsServer:
    """A running separate-port metrics server; `close()` stops it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serve the app's registry on its own port (0: a free one). No auth: bind it to a private network."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsServer(host=host, port=server.server_address[1], _server=server, _thread=thread)
