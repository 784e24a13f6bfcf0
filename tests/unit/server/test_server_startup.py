"""The uvicorn server wrapper: after start-up the long-lived heap is frozen out of the collector."""

from __future__ import annotations

import gc
import socket

import uvicorn

from deeplocal.server import _DrainingServer


async def _app(scope, receive, send):   # a bare ASGI app without a lifespan
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def test_startup_freezes_what_exists_so_full_collections_skip_it():
    gc.unfreeze()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_app, log_level="warning")
    config.load()
    server = _DrainingServer(config, {})
    server.lifespan = config.lifespan_class(config)   # what uvicorn's serve() sets up before startup()
    try:
        assert gc.get_freeze_count() == 0
        await server.startup(sockets=[sock])
        assert gc.get_freeze_count() > 1000   # the interpreter, pytest and deeplocal's modules at least
    finally:
        await server.shutdown(sockets=[sock])
        gc.unfreeze()
        sock.close()
