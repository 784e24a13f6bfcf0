"""Run the app under uvicorn: bind, announce the URL, drain on SIGTERM, exit 0."""

from __future__ import annotations

import gc
import logging
import socket
import sys

import uvicorn

from deeplocal.api.app import create_asgi
from deeplocal.bootstrap import build_services
from deeplocal.config import Settings
from deeplocal.errors import DeeplocalError

log = logging.getLogger("deeplocal.server")


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT: /ready turns 503 at once, in-flight requests finish (up to the timeout)."""

    def __init__(self, config: uvicorn.Config, state: dict):
        super().__init__(config)
        self._state = state

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # What exists once the app has started (imports, the model, the app) lives as long as the process.
        # Frozen, the collector's full passes skip it: unfrozen, each pass walked all of it and stalled the
        # event loop under load (bench/gateway.py at c=64: p99 121 ms at p50 29 ms before, 40 ms after).
        gc.collect()
        gc.freeze()

    def handle_exit(self, sig, frame) -> None:
        self._state["draining"] = True
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after shutdown; a drained SIGTERM is a clean exit (0).
        self._captured_signals.clear()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def configure_logging(settings: Settings) -> None:
    try:
        from deeplocal.metrics.logging import configure_logging as structured
    except ImportError:
        structured = None
    if structured is not None:
        structured(settings.log_level, settings.log_json)
        return
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _protect_logs() -> None:
    from deeplocal.gateway.auth import SecretLogFilter

    for name in ("deeplocal", "uvicorn", "uvicorn.error", ""):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(SecretLogFilter())


def run_server(settings: Settings) -> int:
    from deeplocal.gateway.transport import ExposureError, check_exposure, uvicorn_kwargs

    configure_logging(settings)
    _protect_logs()
    try:
        for finding in check_exposure(settings.server, auth_enabled=settings.gateway.auth):
            log.warning(finding.message)
    except ExposureError as exc:
        print(f"deeplocal: refusing to start: {exc.message}", file=sys.stderr, flush=True)
        return 2
    try:
        services = build_services(settings)
    except DeeplocalError as exc:
        print(f"deeplocal: cannot start: {exc.message}", file=sys.stderr, flush=True)
        return 2
    app = create_asgi(settings, services)
    server_cfg = settings.server
    sock = _bind(server_cfg.host, server_cfg.port)
    host, port = sock.getsockname()[:2]
    scheme = "https" if server_cfg.tls_cert else "http"
    config = uvicorn.Config(
        app, log_level=settings.log_level if settings.log_level != "info" else "warning",
        timeout_graceful_shutdown=int(server_cfg.drain_timeout_s) or None,
        access_log=False, **uvicorn_kwargs(server_cfg),
    )
    server = _DrainingServer(config, services.state)
    models = ", ".join(services.models.ids())
    print(f"deeplocal: serving {models} on {scheme}://{host}:{port}/v1", file=sys.stderr, flush=True)
    server.run(sockets=[sock])
    return 0
