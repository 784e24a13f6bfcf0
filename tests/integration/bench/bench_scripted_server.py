"""A scripted OpenAI-compatible server that streams with known timing, for the bench correctness tests.

Run: python bench_scripted_server.py [--ttft 0.2] [--itl 0.02]; it prints its port on the first line.
The request's `model` picks the behaviour: timed, no-usage, malformed, http500, http429, drop, truncated,
mixed (cycles timed, http500, http429, malformed, drop).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MIXED = ("timed", "http500", "http429", "malformed", "drop")


def build_app(ttft: float, itl: float) -> FastAPI:
    app = FastAPI()
    counter = itertools.count()

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "timed", "object": "model"}]}

    async def stream(request: Request, chat: bool):
        body = await request.json()
        start = asyncio.get_running_loop().time()
        mode = body.get("model", "timed")
        if mode == "mixed":
            mode = MIXED[next(counter) % len(MIXED)]
        if mode in ("http500", "http429"):
            code = int(mode[4:])
            return JSONResponse({"error": {"message": f"scripted {code}", "type": "server_error"}},
                                status_code=code)
        n = int(body.get("max_tokens") or 16)
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        usage_wanted = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(text: str | None, finish: str | None = None) -> str:
            if chat:
                delta = {} if text is None else {"content": text}
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": finish}
            return "data: " + json.dumps({"id": "x", "object": "chunk", "choices": [choice]}) + "\n\n"

        async def until(offset: float) -> None:
            delay = start + offset - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)

        async def events():
            if chat:  # a role-only chunk at once: it must not count as the first token
                yield "data: " + json.dumps({"id": "x", "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}) + "\n\n"
            for i in range(n):
                await until(ttft + i * itl)
                yield chunk(f" t{i}")
                if mode == "malformed" and i == 2:
                    yield "data: {this is not json\n\n"
                    return
                if mode == "drop" and i == 2:
                    raise ConnectionResetError("scripted drop")
                if mode == "truncated" and i == n - 1:
                    return
            yield chunk(None, "length")
            if usage_wanted and mode != "no-usage":
                usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": n,
                         "total_tokens": len(prompt.split()) + n}
                yield "data: " + json.dumps({"id": "x", "choices": [], "usage": usage}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await stream(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await stream(request, chat=False)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--itl", type=float, default=0.02)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(build_app(args.ttft, args.itl), log_level="critical", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    sys.exit(main())
