#!/usr/bin/env python3
"""A stand-in for `vllm serve`, for tests at the process boundary. Standard library only.

It parses the `vllm serve` flags deeplocal builds (an unknown flag exits 2, as vLLM's parser does),
serves /health, /metrics in vLLM's Prometheus format, /v1/models and /v1/chat/completions (streaming
and not), and can be told to misbehave:

  env FAKE_VLLM_DIR           folder for `starts` (a counter) and `argv-N.json` (the argv of start N)
  env FAKE_VLLM_START_DELAY   seconds to wait before listening (a slow model load)
  env FAKE_VLLM_EXIT_ON_START exit with this code right after start-up logging (a bad model)
  env FAKE_VLLM_EXIT_FROM_START=N  ... but only from start number N on (needs FAKE_VLLM_DIR)
  env FAKE_VLLM_IGNORE_SIGTERM=1   keep running after SIGTERM (needs SIGKILL)
  env FAKE_VLLM_TOKEN_DELAY   seconds between streamed tokens
  env FAKE_VLLM_GRANDCHILD=1  start a worker process that ignores SIGTERM (like an engine core);
                              its pid goes to FAKE_VLLM_DIR/worker-N
  POST /fake/crash            exit at once with code 1 (a CUDA error, an OOM kill)
  POST /fake/hang             stop answering /health (a wedged engine)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WORKER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    if argv and argv[0] == "serve":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="vllm serve", allow_abbrev=False)
    p.add_argument("model_tag", nargs="?")
    p.add_argument("--model")
    p.add_argument("--served-model-name", nargs="+")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--tensor-parallel-size", type=int, default=1)
    p.add_argument("--pipeline-parallel-size", type=int, default=1)
    p.add_argument("--quantization", choices=["fp8", "awq", "gptq"])
    p.add_argument("--kv-cache-dtype", choices=["auto", "fp8", "fp8_e4m3", "fp8_e5m2"])
    p.add_argument("--dtype")
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--max-num-batched-tokens", type=int)
    p.add_argument("--gpu-memory-utilization", type=float)
    p.add_argument("--swap-space", type=float)
    p.add_argument("--cpu-offload-gb", type=float)
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
    p.add_argument("--enable-lora", action="store_true")
    p.add_argument("--lora-modules", nargs="+", default=[])
    p.add_argument("--max-loras", type=int)
    p.add_argument("--max-lora-rank", type=int)
    p.add_argument("--distributed-executor-backend", choices=["mp", "ray"])
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--seed", type=int)
    return p.parse_args(argv)


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.served = (args.served_model_name or [args.model or args.model_tag])[0]
        self.adapters = [m.split("=", 1)[0] for m in args.lora_modules]
        self.lock = threading.Lock()
        self.running = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.last_prompt: list[str] = []
        self.hung = False
        self.api_key = os.environ.get("VLLM_API_KEY")

    def metrics(self) -> str:
        labels = f'engine="0",model_name="{self.served}"'
        seqs = self.args.max_num_seqs
        with self.lock:
            rows = [
                ("vllm:num_requests_running", "gauge", self.running),
                ("vllm:num_requests_waiting", "gauge", 0),
                ("vllm:kv_cache_usage_perc", "gauge", min(1.0, self.running / seqs)),
                ("vllm:prefix_cache_queries", "counter", self.prefix_queries),
                ("vllm:prefix_cache_hits", "counter", self.prefix_hits),
                ("vllm:num_preemptions", "counter", 0),
                ("vllm:prompt_tokens", "counter", self.prompt_tokens),
                ("vllm:generation_tokens", "counter", self.generation_tokens),
            ]
        out = ["# HELP vllm:cache_config_info Information of the LLMCache",
               "# TYPE vllm:cache_config_info gauge",
               f'vllm:cache_config_info{{block_size="16",num_gpu_blocks="{seqs * 10}"}} 1.0']
        for name, kind, value in rows:
            sample = f"{name}_total" if kind == "counter" else name
            out += [f"# HELP {name} fake", f"# TYPE {name} {kind}", f"{sample}{{{labels}}} {float(value)}"]
        return "\n".join(out) + "\n"

    def account_prompt(self, words: list[str]) -> None:
        with self.lock:
            shared = 0
            for a, b in zip(words, self.last_prompt):
                if a != b:
                    break
                shared += 1
            self.prefix_queries += len(words)
            self.prefix_hits += shared
            self.prompt_tokens += len(words)
            self.last_prompt = words


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            print(f"INFO fake-vllm {self.address_string()} {fmt % args}", flush=True)

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, code: int, message: str, kind: str) -> None:
            body = {"object": "error", "message": message, "type": kind, "param": None, "code": code}
            self._send(code, json.dumps(body).encode())

        def do_GET(self) -> None:
            if self.path == "/health":
                while state.hung:
                    time.sleep(3600)
                self._send(200, b"")
            elif self.path == "/metrics":
                self._send(200, state.metrics().encode(), "text/plain; version=0.0.4")
            elif self.path == "/v1/models":
                ids = [state.served, *state.adapters]
                self._send(200, json.dumps({"object": "list", "data": [
                    {"id": i, "object": "model", "owned_by": "vllm"} for i in ids]}).encode())
            else:
                self._error(404, "not found", "NotFoundError")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/fake/crash":
                print("ERROR fake-vllm: CUDA error: an illegal memory access was encountered", flush=True)
                os._exit(1)
            if self.path == "/fake/hang":
                state.hung = True
                self._send(200, b"{}")
                return
            if self.path != "/v1/chat/completions":
                self._error(404, "not found", "NotFoundError")
                return
            if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
                self._send(401, json.dumps({"error": "Unauthorized"}).encode())
                return
            if body.get("model") not in (state.served, *state.adapters):
                self._error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
                return
            self._chat(body)

        def _chat(self, body: dict) -> None:
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
            words = prompt.split()
            state.account_prompt(words)
            limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 8)
            pieces = [f"{body['model']}-tok{i} " for i in range(limit)]
            usage = {"prompt_tokens": len(words), "completion_tokens": limit,
                     "total_tokens": len(words) + limit}
            if not body.get("stream"):
                message = {"role": "assistant", "content": "".join(pieces)}
                with state.lock:
                    state.generation_tokens += limit
                self._send(200, json.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
                    "usage": usage}).encode())
                return
            self._stream(body, pieces, usage)

        def _stream(self, body: dict, pieces: list[str], usage: dict) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            delay = float(os.environ.get("FAKE_VLLM_TOKEN_DELAY", "0"))
            base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": body["model"]}

            def event(payload: dict) -> None:
                self.wfile.write(f"data: {json.dumps({**base, **payload})}\n\n".encode())
                self.wfile.flush()

            with state.lock:
                state.running += 1
            try:
                event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
                for piece in pieces:
                    time.sleep(delay)
                    event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                    with state.lock:
                        state.generation_tokens += 1
                event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    event({"choices": [], "usage": usage})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with state.lock:
                    state.running -= 1

    return Handler


def record_start(argv: list[str]) -> int:
    folder = os.environ.get("FAKE_VLLM_DIR")
    if not folder:
        return 1
    counter = Path(folder) / "starts"
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    (Path(folder) / f"argv-{n}.json").write_text(json.dumps(argv))
    (Path(folder) / f"env-{n}.json").write_text(json.dumps(
        {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "VLLM_API_KEY")}))
    return n


def main() -> None:
    argv = sys.argv[1:]
    args = parse_args(argv)
    n = record_start(argv)
    print(f"INFO fake-vllm start {n}: model={args.model or args.model_tag} port={args.port}", flush=True)
    print("WARNING fake-vllm: this is a stand-in, not vLLM", file=sys.stderr, flush=True)
    if os.environ.get("FAKE_VLLM_IGNORE_SIGTERM") == "1":
        signal.signal(signal.SIGTERM, lambda *_: print("INFO fake-vllm: ignoring SIGTERM", flush=True))
    code = os.environ.get("FAKE_VLLM_EXIT_ON_START")
    if code and n >= int(os.environ.get("FAKE_VLLM_EXIT_FROM_START", "1")):
        print("ERROR fake-vllm: ValueError: model architecture not supported", file=sys.stderr, flush=True)
        sys.exit(int(code))
    if os.environ.get("FAKE_VLLM_GRANDCHILD") == "1":
        worker = subprocess.Popen([sys.executable, "-c", WORKER])
        if os.environ.get("FAKE_VLLM_DIR"):
            (Path(os.environ["FAKE_VLLM_DIR"]) / f"worker-{n}").write_text(str(worker.pid))
    time.sleep(float(os.environ.get("FAKE_VLLM_START_DELAY", "0")))
    server = ThreadingHTTPServer((args.host, args.port), make_handler(State(args)))
    server.daemon_threads = True
    print(f"INFO fake-vllm: Uvicorn running on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
