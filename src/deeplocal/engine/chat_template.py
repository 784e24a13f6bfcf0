"""Render chat messages with the model's own Jinja chat template (from GGUF metadata)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from deeplocal.engine.errors import InvalidRequest
from deeplocal.engine.types import Message

# Used when a GGUF carries no template: ChatML, which most instruct models accept.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TOOL_INSTRUCTIONS = (
    "You can call these functions. Their JSON schemas:\n<tools>\n{tools}\n</tools>\n"
    "To call a function, answer only with <tool_call>{{\"name\": <function name>, "
    "\"arguments\": <JSON object>}}</tool_call>."
)


def _raise(message: str) -> None:
    raise TemplateError(message)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = ""):
        self.source = source or CHATML
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False, indent=indent)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self._template = env.from_string(self.source)
        self._bos, self._eos = bos_token, eos_token
        self.supports_tools = "tools" in self.source

    def render(self, messages: tuple[Message, ...], *, tools: tuple[dict[str, Any], ...] = (),
               add_generation_prompt: bool = True) -> str:
        msgs = [_as_dict(m) for m in messages]
        if tools and not self.supports_tools:
            msgs = _inject_tool_prompt(msgs, tools)
        try:
            return self._template.render(
                messages=msgs,
                tools=list(tools) or None,
                add_generation_prompt=add_generation_prompt,
                bos_token=self._bos,
                eos_token=self._eos,
            )
        except TemplateError as exc:
            raise InvalidRequest(f"the model's chat template rejected the messages: {exc}",
                                 param="messages") from exc


def _as_dict(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = list(m.tool_calls)
        if not m.content:
            calls = "".join(
                "<tool_call>" + json.dumps({"name": c["function"]["name"],
                                            "arguments": _loads(c["function"].get("arguments"))})
                + "</tool_call>" for c in m.tool_calls)
            out["content"] = calls
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.role == "tool":
        out["role"] = "user"
        out["content"] = f"<tool_response>\n{m.content}\n</tool_response>"
    return out


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _inject_tool_prompt(msgs: list[dict[str, Any]], tools: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    schemas = "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
    text = TOOL_INSTRUCTIONS.format(tools=schemas)
    if msgs and msgs[0]["role"] == "system":
        first = dict(msgs[0])
        first["content"] = f"{first['content']}\n\n{text}"
        return [first, *msgs[1:]]
    return [{"role": "system", "content": text}, *msgs]
