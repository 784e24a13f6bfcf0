"""The `docker run` line for a deeplocal.yaml: ports, mounts, env names (never values) and hardening."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from deeplocal.deploy.spec import ImagesSpec

CONTAINER_CONFIG = "/etc/deeplocal/deeplocal.yaml"
CONTAINER_DATA = "/var/lib/deeplocal"
SECRET_ENV = ("DEEPLOCAL_AUDIT_KEY", "DEEPLOCAL_DATABASE_URL")


def docker_run(config: dict[str, Any], config_path: Path | None, *, gpu: bool = False,
               image: str | None = None, name: str = "deeplocal") -> list[str]:
    """argv of `docker run`: published on loopback only, read-only root, no capabilities; files the config
    names by absolute path (GGUF models, TLS) are mounted read-only at the same path."""
    server = config.get("server") or {}
    port = int(server.get("port", 8000))
    images = ImagesSpec()
    argv = ["docker", "run", "--name", name, "--detach", "--restart", "unless-stopped",
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-p", f"127.0.0.1:{port}:{port}", "-v", f"deeplocal-data:{CONTAINER_DATA}"]
    if gpu:
        argv += ["--gpus", "all", "--ipc", "host"]
    if config_path is not None:
        argv += ["-v", f"{config_path.resolve()}:{CONTAINER_CONFIG}:ro", "-e", f"DEEPLOCAL_CONFIG={CONTAINER_CONFIG}"]
    argv += model_mounts(config)
    for key in SECRET_ENV:
        argv += ["-e", key]   # passed through from the caller's environment, never written here
    argv.append(image or (images.cuda if gpu else images.cpu))
    argv += ["serve", "--host", "0.0.0.0", "--port", str(port)]
    return argv


def model_mounts(config: dict[str, Any]) -> list[str]:
    """`-v` flags for models given as absolute paths in the config (mounted at the same path)."""
    out: list[str] = []
    for m in config.get("models") or []:
        source = (m.partition("=")[2] or m) if isinstance(m, str) else str(m.get("source", ""))
        if source.startswith("/"):
            out += ["-v", f"{source}:{source}:ro"]
    for key in ("tls_cert", "tls_key", "tls_client_ca"):
        value = (config.get("server") or {}).get(key)
        if value and str(value).startswith("/"):
            out += ["-v", f"{value}:{value}:ro"]
    return out


def command_line(argv: list[str]) -> str:
    return shlex.join(argv)
