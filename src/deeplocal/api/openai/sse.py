"""Server-sent events framing for OpenAI streams."""

from __future__ import annotations

from typing import Any

import orjson

DONE = "data: [DONE]\n\n"


def event(payload: dict[str, Any]) -> str:
    """One `data:` event: compact JSON, non-ASCII as UTF-8 (what json.dumps(ensure_ascii=False) writes)."""
    return f"data: {orjson.dumps(payload).decode()}\n\n"


def error_event(exc: BaseException) -> str:
    return event({"error": {
        "message": getattr(exc, "message", None) or "the generation failed",
        "type": getattr(exc, "error_type", "server_error"),
        "param": getattr(exc, "param", None),
        "code": getattr(exc, "code", None) or "stream_error"}})
