"""Helpers for the vLLM backend tests against the stand-in executable (fake_vllm.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from deeplocal.engine.types import GenerationRequest, Message, SamplingParams
from deeplocal.engine.vllm.config import VllmSettings

FAKE = Path(__file__).with_name("fake_vllm.py")

# Supervision tuned for tests: fast health checks and restarts, short stop timeout.
FAST = {
    "startup_timeout_s": 15.0, "health_interval_s": 0.2, "unhealthy_after": 2, "stop_timeout_s": 2.0,
    "restart_backoff_s": 0.1, "restart_backoff_max_s": 0.4, "metrics_interval_s": 0.1,
    "first_token_timeout_s": 10.0, "idle_timeout_s": 10.0, "request_timeout_s": 30.0,
}


class FakeRun:
    """The fake's record of its starts (FAKE_VLLM_DIR)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def starts(self) -> int:
        counter = self.folder / "starts"
        return int(counter.read_text()) if counter.exists() else 0

    def argv(self, n: int = 1) -> list[str]:
        return json.loads((self.folder / f"argv-{n}.json").read_text())

    def env(self, n: int = 1) -> dict[str, str | None]:
        return json.loads((self.folder / f"env-{n}.json").read_text())

    def settings(self, env: dict[str, str] | None = None, **overrides) -> VllmSettings:
        fields = {"command": (sys.executable, "-u", str(FAKE), "serve"),
                  "env": {"FAKE_VLLM_DIR": str(self.folder), **(env or {})}, **FAST, **overrides}
        return VllmSettings(**fields)


def chat(text: str = "hello there", *, max_tokens: int = 4, lora: str | None = None,
         model: str = "tiny") -> GenerationRequest:
    return GenerationRequest(request_id="r1", model=model, lora=lora,
                             messages=(Message(role="user", content=text),),
                             sampling=SamplingParams(max_tokens=max_tokens, temperature=0.0))


async def collect(backend, req: GenerationRequest) -> tuple[str, list]:
    chunks = [chunk async for chunk in backend.generate(req)]
    return "".join(c.text for c in chunks), chunks


@contextlib.asynccontextmanager
async def serve_app(app) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1:<free port>; yield its base URL ending in /v1."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await task


def app_serving(backend, model_id: str = "tiny"):
    """deeplocal's real HTTP app with one model served by `backend` (started by the app's lifespan)."""
    from deeplocal.api.app import create_app
    from deeplocal.api.services import ModelRegistry, ServedModel, Services
    from deeplocal.config import Settings

    services = Services(models=ModelRegistry([ServedModel(id=model_id, backend=backend)]))
    return create_app(Settings(), services)
