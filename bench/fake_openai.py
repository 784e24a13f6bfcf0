"""An instant OpenAI-compatible upstream for the proxy benchmark (bench/gateway.py). Runs as its own process:

    python bench/fake_openai.py [--port 0] [--chunks 20]     # prints "PORT <n>" on stdout, then serves

POST /v1/chat/completions returns a fixed chat completion (with usage) at once; with "stream": true it
sends `--chunks` content chunks (the last one carries finish_reason "stop"), a usage chunk, then
`data: [DONE]`, one ASGI send per event. GET /v1/models lists the model "fake". Every body is built once
at start; a request only reads its body and checks the stream flag. A bare ASGI app on uvicorn (one
worker, httptools when installed), so the upstream costs as little as a Python server can.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")


def _event(obj: dict[str, Any] | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def build_bodies(chunks: int) -> tuple[bytes, list[bytes], bytes]:
    """(non-streaming JSON body, SSE events, GET /v1/models body): fixed, so each request only sends bytes."""
    pieces = [WORDS[i % len(WORDS)] for i in range(chunks)]
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    full = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake"}
    events = []
    for i, piece in enumerate(pieces):
        delta: dict[str, Any] = {"content": piece}
        if i == 0:
            delta["role"] = "assistant"
        finish = "stop" if i == chunks - 1 else None
        events.append(_event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    events.append(_event({**head, "choices": [], "usage": usage}))
    events.append(_event("[DONE]"))
    models = {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "bench"}]}
    return json.dumps(full).encode(), events, json.dumps(models).encode()


def build_app(chunks: int) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    full, events, models = build_bodies(chunks)
    json_headers = [(b"content-type", b"application/json")]
    sse_headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/v1/models":
            await reply(send, 200, json_headers, models)
            return
        if method != "POST" or path != "/v1/chat/completions":
            await reply(send, 404, json_headers, b'{"error":{"message":"not found","type":"not_found"}}')
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            stream = bool(json.loads(raw or b"{}").get("stream"))
        except ValueError:
            await reply(send, 400, json_headers, b'{"error":{"message":"bad json","type":"invalid_request"}}')
            return
        if not stream:
            await reply(send, 200, json_headers, full)
            return
        await send({"type": "http.response.start", "status": 200, "headers": sse_headers})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per streamed reply")
    args = parser.parse_args(argv)
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        build_app(args.chunks),
        log_level="warning",
        lifespan="off",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
