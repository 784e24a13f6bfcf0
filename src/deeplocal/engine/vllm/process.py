"""Process-group plumbing for supervised children: their environment, and stopping every process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

LOG = logging.getLogger("deeplocal.engine.vllm")


def child_environment(parent: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ours without deeplocal's own variables (keys, database URLs), with
    unbuffered Python output so that log lines arrive as they are written, then `extra` on top."""
    env = {k: v for k, v in parent.items() if not k.startswith("DEEPLOCAL_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


async def terminate_group(proc: asyncio.subprocess.Process, timeout_s: float, *,
                          sweep_s: float = 10.0) -> int | None:
    """SIGTERM the leader, wait `timeout_s`, SIGKILL the whole group (vLLM's engine core and workers),
    then wait up to `sweep_s` until no live process of the group is left (GPU memory released)."""
    pgid = proc.pid                      # start_new_session=True: the child leads its own group
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except TimeoutError:
            LOG.warning("vllm child ignored SIGTERM; killing", extra={"pid": proc.pid})
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    code = await proc.wait()
    deadline = time.monotonic() + sweep_s
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if left:
        LOG.warning("vllm child's processes outlived SIGKILL", extra={"pgid": pgid, "pids": left})
    return code


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc; elsewhere a yes/no from killpg."""
    proc_root = Path("/proc")
    if not (proc_root / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    found = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found
