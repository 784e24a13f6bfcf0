#!/usr/bin/env bash
# GPU check of the vLLM backend: run from the repository root on a machine with an NVIDIA GPU.
#
#   1. `deeplocal doctor --gpu --json`: driver, CUDA, visible GPUs, NCCL env, /dev/shm, vLLM install.
#   2. If vLLM is installed: the real-vLLM integration test on the GPU path (tests/integration/vllm/
#      test_vllm_real.py with DEEPLOCAL_VLLM_GPU=1): a tiny Llama built by transformers, started by our
#      supervisor with CUDA_VISIBLE_DEVICES=0, bf16, gpu_memory_utilization 0.2 and prefix caching,
#      one chat completion streamed through deeplocal's HTTP API, stats from vLLM's /metrics, a clean
#      stop (no process of the child's group left).
#
# Environment:
#   DEEPLOCAL_VLLM_PYTHON  python of the venv holding vllm (default: python3 if it imports vllm)
#   PYTHON                 python that runs deeplocal and pytest (default: python3)
#   OUT                    folder for doctor.json and pytest.log (default: ./gpu-check-out)
#   WHEELS                 folder of wheels to install first, offline (default: .whl if present)
#
# Exit: 0 all passed; 1 a check failed; 2 vLLM is not installed here (only the doctor ran).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-./gpu-check-out}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT"

if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/deeplocal-site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/deeplocal-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

if [ -z "${DEEPLOCAL_VLLM_PYTHON:-}" ] && "$PYTHON" -c "import vllm" >/dev/null 2>&1; then
    DEEPLOCAL_VLLM_PYTHON=$(command -v "$PYTHON")
fi

echo "== nvidia-smi"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || true

echo "== deeplocal doctor --gpu"
cat > "$OUT/deeplocal.yaml" <<YAML
server:
  host: 127.0.0.1
YAML
doctor_env=()
[ -n "${DEEPLOCAL_VLLM_PYTHON:-}" ] && doctor_env=(DEEPLOCAL_VLLM__PYTHON="$DEEPLOCAL_VLLM_PYTHON")
env "${doctor_env[@]}" "$PYTHON" -c "from deeplocal.cli.doctor import app; app()" \
    --gpu --json --config "$OUT/deeplocal.yaml" | tee "$OUT/doctor.json"
"$PYTHON" - "$OUT/doctor.json" <<'PY' || exit 1
import json, sys
report = json.load(open(sys.argv[1]))
status = {c["name"]: c["status"] for c in report["checks"]}
bad = [n for n in ("driver", "cuda", "gpus") if status.get(n) != "ok"]
if bad:
    sys.exit(f"doctor --gpu: {', '.join(bad)} not ok on a GPU machine")
print("doctor --gpu: driver, cuda and gpus ok")
PY

if [ -z "${DEEPLOCAL_VLLM_PYTHON:-}" ]; then
    echo "SKIP: vLLM is not installed here; set DEEPLOCAL_VLLM_PYTHON to a venv's python that has it"
    exit 2
fi

echo "== real vLLM on the GPU through deeplocal ($DEEPLOCAL_VLLM_PYTHON)"
DEEPLOCAL_VLLM_PYTHON=$DEEPLOCAL_VLLM_PYTHON DEEPLOCAL_VLLM_GPU=1 timeout 900 \
    "$PYTHON" -m pytest -q -s -p no:cacheprovider tests/integration/vllm/test_vllm_real.py 2>&1 \
    | tee "$OUT/pytest.log"
exit "${PIPESTATUS[0]}"
