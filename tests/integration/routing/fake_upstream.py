"""A scripted, fault-injecting OpenAI-compatible server for routing tests. Runs as its own process:

    python fake_upstream.py            # binds 127.0.0.1:0, prints "PORT <n>" on stdout

Control (JSON over HTTP):
    POST /_control/script  {"steps": [step, ...], "default": step}   steps are used one per request
    POST /_control/reset                                               clears script and log
    GET  /_control/log     {"requests": [{"n", "path", "body", "authorization", "outcome"}, ...]}
    POST /_control/models  {"status": 503}                             what GET /v1/models answers

A step: {"kind": "ok" | "status" | "drop" | "malformed" | "hang" | "hang_after",
         "text": reply (default "echo: " + last user message), "delay_first_s", "delay_s",
         "status", "retry_after", "body", "after" (chunks sent before drop/malformed/hang_after),
         "piece_chars" (split the reply every n characters instead of at spaces)}
Every request is logged before it is answered; `outcome` becomes "completed" when a stream ends
normally, "failed" when the server broke it on purpose, "cancelled" when the client went away.
A request with `"stream": false` and an "ok" step gets one JSON body, as from a real server; with
"sse_anyway": true in the step it gets the stream regardless (a server that ignores the flag).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class Script:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.default: dict[str, Any] = {"kind": "ok"}
        self.log: list[dict[str, Any]] = []
        self.models_status = 200

    def next_step(self) -> dict[str, Any]:
        return self.steps.pop(0) if self.steps else dict(self.default)


def _reply_text(body: dict[str, Any], step: dict[str, Any]) -> str:
    if "text" in step:
        return step["text"]
    if "messages" in body:
        users = [m.get("content") or "" for m in body["messages"] if m.get("role") == "user"]
        return "echo: " + (users[-1] if users else "")
    return "echo: " + str(body.get("prompt", ""))


def _pieces(text: str, size: int | None) -> list[str]:
    if size:
        return [text[i:i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _event(obj: dict[str, Any] | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"data: {data}\n\n".encode()


def _chunk(body: dict[str, Any], piece: str | None, finish: str | None = None) -> dict[str, Any]:
    chat = "messages" in body
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": piece} if piece is not None else {"role": "assistant", "content": ""}
    else:
        choice["text"] = piece or ""
    return {"id": "cmpl-fake", "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()), "model": body.get("model"), "choices": [choice]}


async def _stream(body: dict[str, Any], step: dict[str, Any], entry: dict[str, Any]):
    kind = step.get("kind", "ok")
    pieces = _pieces(_reply_text(body, step), step.get("piece_chars"))
    after = int(step.get("after", 1))
    try:
        await asyncio.sleep(float(step.get("delay_first_s", 0)))
        if "messages" in body:
            yield _event(_chunk(body, None))
        for i, piece in enumerate(pieces):
            if i == after and kind in ("drop", "malformed", "hang_after"):
                entry["outcome"] = "failed"
                if kind == "malformed":
                    yield b"data: {this is not json\n\n"
                    return
                if kind == "hang_after":
                    await asyncio.sleep(3600)
                raise ConnectionAbortedError("scripted mid-stream drop")
            if i:
                await asyncio.sleep(float(step.get("delay_s", 0)))
            yield _event(_chunk(body, piece))
        yield _event(_chunk(body, "", finish="stop"))
        if body.get("stream_options", {}).get("include_usage"):
            usage = {"prompt_tokens": len(json.dumps(body.get("messages", body.get("prompt")))) // 4,
                     "completion_tokens": len(pieces), "total_tokens": 0}
            yield _event({"id": "cmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": usage})
        yield _event("[DONE]")
        entry["outcome"] = "completed"
    finally:  # cancelled, or closed when the client went away
        if entry["outcome"] is None:
            entry["outcome"] = "cancelled"


async def _whole(body: dict[str, Any], step: dict[str, Any], entry: dict[str, Any]) -> Response:
    await asyncio.sleep(float(step.get("delay_first_s", 0)))
    text = _reply_text(body, step)
    chat = "messages" in body
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    usage = {"prompt_tokens": len(json.dumps(body.get("messages", body.get("prompt")))) // 4,
             "completion_tokens": len(_pieces(text, step.get("piece_chars"))), "total_tokens": 0}
    entry["outcome"] = "completed"
    return JSONResponse({"id": "cmpl-fake", "object": "chat.completion" if chat else "text_completion",
                         "created": int(time.time()), "model": body.get("model"), "choices": [choice],
                         "usage": usage})


def build_app(script: Script) -> Starlette:
    async def generate(request: Request) -> Response:
        body = await request.json()
        step = script.next_step()
        entry = {"n": len(script.log), "path": request.url.path, "body": body,
                 "authorization": request.headers.get("authorization"), "outcome": None, "step": step}
        script.log.append(entry)
        kind = step.get("kind", "ok")
        if kind == "status":
            headers = {"retry-after": str(step["retry_after"])} if "retry_after" in step else {}
            entry["outcome"] = "failed"
            payload = step.get("body", {"error": {"message": f"scripted {step['status']}", "type": "x"}})
            return JSONResponse(payload, status_code=int(step["status"]), headers=headers)
        if kind == "hang":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                entry["outcome"] = "cancelled"
                raise
        if body.get("stream") is False and kind == "ok" and not step.get("sse_anyway"):
            return await _whole(body, step, entry)
        return StreamingResponse(_stream(body, step, entry), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]},
                            status_code=script.models_status)

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        script.log.append({"n": len(script.log), "path": request.url.path, "body": body,
                           "authorization": request.headers.get("authorization"), "outcome": "completed"})
        data = [{"index": i, "object": "embedding", "embedding": [float(len(t)), 1.0]} for i, t in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data[::-1]})

    async def set_script(request: Request) -> Response:
        data = await request.json()
        script.steps.extend(data.get("steps", []))
        if "default" in data:
            script.default = data["default"]
        return JSONResponse({"ok": True})

    async def reset(request: Request) -> Response:
        script.reset()
        return JSONResponse({"ok": True})

    async def get_log(request: Request) -> Response:
        return JSONResponse({"requests": script.log})

    async def set_models(request: Request) -> Response:
        script.models_status = int((await request.json())["status"])
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/v1/chat/completions", generate, methods=["POST"]),
        Route("/v1/completions", generate, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/_control/script", set_script, methods=["POST"]),
        Route("/_control/reset", reset, methods=["POST"]),
        Route("/_control/log", get_log, methods=["GET"]),
        Route("/_control/models", set_models, methods=["POST"]),
    ])


def main() -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(build_app(Script()), log_level="critical", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
