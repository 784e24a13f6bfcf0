"""Health probing: every `interval_s`, ask each upstream whether it is up. In-process engines answer
through `stats().healthy`; URL upstreams through `GET {base_url}/models` (spends no tokens). Any answer
below 500 counts as up (a 401 still proves the server is there); no answer or a 5xx counts as down.
Routing skips an upstream that is down until a later probe finds it up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from deeplocal.routing.config import HealthSettings
from deeplocal.routing.upstreams import Upstream, UpstreamRegistry

log = logging.getLogger(__name__)


class HealthProber:
    def __init__(self, registry: UpstreamRegistry, settings: HealthSettings):
        self._registry = registry
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        if self._settings.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="deeplocal-health-prober")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self._settings.interval_s)

    async def probe_once(self) -> dict[str, bool]:
        """Probe every enabled upstream at once; returns name -> healthy."""
        ups = [up for up in self._registry.upstreams.values() if up.disabled is None]
        results = await asyncio.gather(*(self._probe(up) for up in ups))
        for up, (healthy, reason) in zip(ups, results):
            if healthy != up.healthy:
                log.warning("upstream %s is now %s%s", up.name, "up" if healthy else "down",
                            f": {reason}" if reason else "")
            up.healthy, up.health_reason = healthy, reason
        return {up.name: up.healthy for up in ups}

    async def _probe(self, up: Upstream) -> tuple[bool, str]:
        s = up.settings
        if s.base_url is None:
            healthy = all(backend.stats().healthy for backend in up.backends.values())
            return healthy, "" if healthy else "engine reports unhealthy"
        if self._client is None:
            timeout = self._settings.timeout_s
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False)
        try:
            response = await self._client.get(s.base_url.rstrip("/") + "/models", headers=dict(s.headers))
        except httpx.HTTPError as exc:
            return False, f"probe failed: {exc!r}"
        if response.status_code >= 500:
            return False, f"probe answered {response.status_code}"
        return True, ""
