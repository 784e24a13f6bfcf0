"""Server-sent events framing for OpenAI streams."""

from __future__ import annotations

import json
from typing import Any

DONE = "data: [DONE]\n\n"


def event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def error_event(exc: BaseException) -> str:
    return event({"error": {
        "message": getattr(exc, "message", None) or "the generation failed",
        "type": getattr(exc, "error_type", "server_error"),
        "param": getattr(exc, "param", None),
        "code": getattr(exc, "code", None) or "stream_error"}})
