#!/usr/bin/env bash
# Start deeplocal's metrics collector on a GPU machine, scrape /metrics over HTTP, print the GPU series.
#
#   scripts/gpu_check.sh            # from the repository root; exits 1 if no GPU series came back
#
# Needs Python >= 3.11 with prometheus-client, nvidia-ml-py, pydantic and fastapi (psutil optional).
# Machines without network: build them here for the device's Python and carry the folder, e.g.
#   pip install --target build/gpu_check_deps --only-binary=:all: --python-version 3.11 \
#       prometheus-client nvidia-ml-py pydantic fastapi psutil
# build/gpu_check_deps is put on PYTHONPATH when it exists. Set PYTHON to choose the interpreter.
# With torch+CUDA importable, a 3 s matmul load runs between two scrapes so power and utilisation move.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import prometheus_client, pynvml" 2>/dev/null; then
    PY=.venv/bin/python
  else
    PY=python3
  fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[[ -d build/gpu_check_deps ]] && export PYTHONPATH="$PYTHONPATH:$PWD/build/gpu_check_deps"

echo "== host: $(uname -srm), python: $("$PY" -V 2>&1)"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,driver_version,temperature.gpu,power.draw,memory.used,memory.total \
    --format=csv || true
else
  echo "nvidia-smi: not found"
fi

exec "$PY" - <<'PY'
import sys
import threading
import time
import urllib.request

missing = []
for mod in ("prometheus_client", "pynvml", "pydantic", "fastapi"):
    try:
        __import__(mod)
    except ImportError:
        missing.append(mod)
if missing:
    sys.exit(f"missing Python modules: {', '.join(missing)} (see the header of scripts/gpu_check.sh)")

from deeplocal.metrics.config import MetricsSettings  # noqa: E402
from deeplocal.metrics.http import start_metrics_server  # noqa: E402
from deeplocal.metrics.registry import Metrics  # noqa: E402


def load(seconds: float) -> str:
    try:
        import torch
    except ImportError:
        return "no torch: idle GPUs"
    if not torch.cuda.is_available():
        return "torch without CUDA: idle GPUs"
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        (a @ a).sum().item()
    return f"bf16 matmul load on cuda:0 for {seconds:.0f} s"


def scrape(url: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read().decode()
    return body, (time.perf_counter() - t0) * 1000


metrics = Metrics(MetricsSettings(), backends=dict)
server = start_metrics_server(metrics, "127.0.0.1", 0)
print(f"== collector serving {server.url}")
first, first_ms = scrape(server.url)
note = []
worker = threading.Thread(target=lambda: note.append(load(3.0)))
worker.start()
time.sleep(2.0)
during, during_ms = scrape(server.url)
worker.join()
final, final_ms = scrape(server.url)
print(f"== scrape times: first {first_ms:.1f} ms (opens NVML), under load {during_ms:.1f} ms, "
      f"after {final_ms:.1f} ms; {note[0] if note else 'load failed'}")
if metrics.gpu_reader is not None and metrics.gpu_reader.error:
    print(f"== NVML: {metrics.gpu_reader.error}")

for title, body in (("under load", during), ("after load", final)):
    print(f"== deeplocal_gpu_* series ({title})")
    for line in body.splitlines():
        if line.startswith("deeplocal_gpu_"):
            print(line)
print("== energy and host")
for line in final.splitlines():
    if line.startswith(("deeplocal_cpu_energy", "deeplocal_host_memory_total")):
        print(line)

names = {line.split("{")[0].split(" ")[0] for line in final.splitlines() if line.startswith("deeplocal_gpu_")}
available = "deeplocal_gpu_available 1.0" in final
print(f"== {len(names)} distinct deeplocal_gpu_* metrics; available={available}")
server.close()
metrics.close()
sys.exit(0 if available and len(names) >= 12 else 1)
PY
