"""Run the app under uvicorn: bind, announce the URL, drain on SIGTERM, exit 0."""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from deeplocal.api.app import create_app
from deeplocal.bootstrap import build_services
from deeplocal.config import Settings

log = logging.getLogger("deeplocal.server")


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT: /ready turns 503 at once, in-flight requests finish (up to the timeout)."""

    def __init__(self, config: uvicorn.Config, state: dict):
        super().__init__(config)
        self._state = state

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


def run_server(settings: Settings) -> int:
    configure_logging(settings)
    services = build_services(settings)
    app = create_app(settings, services)
    server_cfg = settings.server
    sock = _bind(server_cfg.host, server_cfg.port)
    host, port = sock.getsockname()[:2]
    scheme = "https" if server_cfg.tls_cert else "http"
    config = uvicorn.Config(
        app, log_level=settings.log_level if settings.log_level != "info" else "warning",
        timeout_graceful_shutdown=int(server_cfg.drain_timeout_s) or None,
        ssl_certfile=server_cfg.tls_cert, ssl_keyfile=server_cfg.tls_key,
        ssl_ca_certs=server_cfg.tls_client_ca,
        ssl_cert_reqs=2 if server_cfg.tls_client_ca else 0,
        access_log=False, server_header=False,
    )
    server = _DrainingServer(config, services.state)
    models = ", ".join(services.models.ids())
    print(f"deeplocal: serving {models} on {scheme}://{host}:{port}/v1", file=sys.stderr, flush=True)
    server.run(sockets=[sock])
    return 0
