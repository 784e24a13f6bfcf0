"""Run one `vllm serve` child: start gated on /health, restart on crash or hang, stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from deeplocal.engine.errors import BackendUnavailable
from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.engine.vllm.process import child_environment, terminate_group

LOG = logging.getLogger("deeplocal.engine.vllm")
CHILD_LOG = logging.getLogger("deeplocal.engine.vllm.child")
STREAM_LIMIT = 1 << 20          # longest child log line kept whole (progress bars can be long)
_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


def line_level(line: str) -> int:
    """The level a child line announces near its start (`INFO 11-28 21:40:02 [...]`); INFO if none."""
    found = _LEVEL.search(line[:64])
    return getattr(logging, found.group(1)) if found else logging.INFO


class ChildState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    startup_timeout_s: float = 900.0
    health_interval_s: float = 2.0
    unhealthy_after: int = 3
    stop_timeout_s: float = 30.0
    max_restarts: int = 5
    restart_window_s: float = 600.0
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    log_tail_lines: int = 40

    @classmethod
    def from_settings(cls, s: VllmSettings) -> SupervisorPolicy:
        return cls(s.startup_timeout_s, s.health_interval_s, s.unhealthy_after, s.stop_timeout_s,
                   s.max_restarts, s.restart_window_s, s.restart_backoff_s, s.restart_backoff_max_s,
                   s.log_tail_lines)

    def backoff(self, attempt: int) -> float:
        """Delay before restart number `attempt` (1-based): doubling, capped."""
        return min(self.backoff_max_s, self.backoff_s * 2 ** max(0, attempt - 1))


class ChildFailed(Exception):
    """The child exited or stayed unhealthy while we waited for it (internal)."""


class VllmSupervisor:
    """Owns one child process and its health. `base_url` is the child's root (`http://127.0.0.1:P`)."""

    def __init__(self, name: str, argv: Sequence[str], *, base_url: str, env: Mapping[str, str] | None = None,
                 policy: SupervisorPolicy = SupervisorPolicy()) -> None:
        self.name = name
        self.argv = list(argv)
        self.base_url = base_url.rstrip("/")
        self.env = dict(env or {})
        self.policy = policy
        self.state = ChildState.STOPPED
        self.restarts = 0
        self.last_error: str | None = None
        self._tail: deque[str] = deque(maxlen=policy.log_tail_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._exit: asyncio.Future[int] | None = None     # one waiter per child, shared by all checks
        self._pumps: list[asyncio.Task[None]] = []
        self._monitor: asyncio.Task[None] | None = None
        self._crash_times: deque[float] = deque()
        self._http: httpx.AsyncClient | None = None

    # ----- public
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def ready(self) -> bool:
        return self.state is ChildState.READY

    def log_tail(self) -> list[str]:
        return list(self._tail)

    async def start(self) -> None:
        """Spawn the child and return once its /health answers 200; raise `BackendUnavailable` if not."""
        if self.state not in (ChildState.STOPPED, ChildState.FAILED):
            return
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(min(5.0, self.policy.health_interval_s * 2)),
                                       trust_env=False)   # loopback: never through a proxy
        self.state = ChildState.STARTING
        try:
            await self._launch_and_wait()
        except (ChildFailed, OSError) as exc:
            await self._reap()
            await self._close_http()
            self.state = ChildState.FAILED
            raise BackendUnavailable(self._explain(f"vLLM child {self.name!r} did not become healthy: {exc}"),
                                     retry_after=self.policy.backoff_s) from exc
        self.state = ChildState.READY
        self._monitor = asyncio.create_task(self._watch(), name=f"vllm-watch-{self.name}")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout_s`; the child's whole process group goes."""
        self.state = ChildState.STOPPING
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        await self._reap()
        await self._close_http()
        self.state = ChildState.STOPPED

    def unavailable(self) -> BackendUnavailable:
        """The error to raise to callers while the child is not ready."""
        if self.state is ChildState.FAILED:
            return BackendUnavailable(self._explain(f"vLLM child {self.name!r} failed: {self.last_error}"),
                                      retry_after=self.policy.backoff_max_s)
        return BackendUnavailable(f"vLLM child {self.name!r} is {self.state.value}",
                                  retry_after=max(1.0, self.policy.backoff_s))

    # ----- spawning and health
    async def _launch_and_wait(self) -> None:
        self._tail.clear()
        env = child_environment(os.environ, self.env)
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True, limit=STREAM_LIMIT)
        self._exit = asyncio.ensure_future(self._proc.wait())
        LOG.info("vllm child started", extra={"child": self.name, "pid": self._proc.pid})
        pid = self._proc.pid
        self._pumps = [asyncio.create_task(self._pump(self._proc.stdout, "stdout", pid)),
                       asyncio.create_task(self._pump(self._proc.stderr, "stderr", pid))]
        await self._wait_healthy(time.monotonic() + self.policy.startup_timeout_s)

    async def _wait_healthy(self, deadline: float) -> None:
        assert self._proc is not None
        delay = 0.1
        while True:
            if self._proc.returncode is not None:
                raise ChildFailed(f"it exited with code {self._proc.returncode}")
            if await self._healthy():
                return
            if time.monotonic() >= deadline:
                raise ChildFailed(f"no healthy /health within {self.policy.startup_timeout_s:g} s")
            await self._exited_within(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(1.0, delay * 2)

    async def _healthy(self) -> bool:
        assert self._http is not None
        try:
            response = await self._http.get(f"{self.base_url}/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _pump(self, stream: asyncio.StreamReader | None, which: str, pid: int) -> None:
        if stream is None:
            return
        while True:
            try:
                raw = await stream.readline()
            except ValueError:          # a line over STREAM_LIMIT: skip it
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)
                CHILD_LOG.log(line_level(line), line, extra={"child": self.name, "stream": which, "pid": pid})

    # ----- watching and restarting
    async def _watch(self) -> None:
        failures = 0
        while True:
            assert self._proc is not None
            exited = await self._exited_within(self.policy.health_interval_s)
            if not exited:
                failures = 0 if await self._healthy() else failures + 1
                if failures < self.policy.unhealthy_after:
                    continue
                self.last_error = f"/health failed {failures} times in a row (hung)"
            else:
                self.last_error = f"exited with code {self._proc.returncode}"
            LOG.warning("vllm child down", extra={"child": self.name, "reason": self.last_error})
            failures = 0
            if not await self._restart():
                return

    async def _exited_within(self, seconds: float) -> bool:
        assert self._exit is not None
        done, _ = await asyncio.wait({self._exit}, timeout=seconds)
        return bool(done)

    async def _restart(self) -> bool:
        """Restart with backoff until healthy or out of budget. False: gave up (state FAILED)."""
        while True:
            self.state = ChildState.RESTARTING
            await self._reap()
            now = time.monotonic()
            self._crash_times.append(now)
            while self._crash_times and now - self._crash_times[0] > self.policy.restart_window_s:
                self._crash_times.popleft()
            if len(self._crash_times) > self.policy.max_restarts:
                self.state = ChildState.FAILED
                LOG.error("vllm child gave up", extra={"child": self.name, "reason": self.last_error})
                return False
            await asyncio.sleep(self.policy.backoff(len(self._crash_times)))
            self.restarts += 1
            try:
                await self._launch_and_wait()
            except (ChildFailed, OSError) as exc:
                self.last_error = f"restart failed: {exc}"
                continue
            self.state = ChildState.READY
            LOG.info("vllm child restarted", extra={"child": self.name, "restarts": self.restarts})
            return True

    async def _reap(self) -> None:
        """Stop the current child (if any) and its process group, then drain its log pumps."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await terminate_group(proc, self.policy.stop_timeout_s)
        self._exit = None
        pumps, self._pumps = self._pumps, []
        for task in pumps:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=2.0)
        self._proc = None

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _explain(self, message: str) -> str:
        tail = "\n".join(self._tail)
        return f"{message}\n--- last {len(self._tail)} log lines ---\n{tail}" if tail else message
