"""Recognise function calls in generated text (`<tool_call>{...}</tool_call>` or a bare JSON call)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

_TAGGED = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it


def parse_tool_calls(text: str, allowed: set[str]) -> list[ParsedToolCall]:
    """Return the calls found in `text` naming an offered function; [] when it is a plain answer."""
    candidates = _TAGGED.findall(text)
    stripped = text.strip()
    if not candidates and stripped.startswith("{"):
        candidates = [stripped]
    calls = []
    for raw in candidates:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict) or obj.get("name") not in allowed:
            continue
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                continue
        if not isinstance(args, dict):
            continue
        calls.append(ParsedToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=obj["name"],
                                    arguments=json.dumps(args, ensure_ascii=False)))
    return calls
