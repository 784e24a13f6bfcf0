"""Turn engine Chunks into OpenAI chat deltas: content, reasoning_content, tool calls, logprobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from deeplocal.engine.reasoning import ReasoningSplitter
from deeplocal.engine.tools import parse_tool_calls
from deeplocal.engine.types import Chunk, TokenLogprob

TOOL_OPENERS = ("<tool_call>", "{")


@dataclass
class Delta:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.content or self.reasoning or self.tool_calls or self.logprobs)


class ChatAssembler:
    """Feed chunks in order; get deltas out. In tool mode, text that may be a call is held back."""

    def __init__(self, *, tool_mode: str, tool_names: set[str], reasoning: bool, opens_thinking: bool):
        self._tool_mode = tool_mode
        self._tool_names = tool_names
        self._splitter = ReasoningSplitter(started_in_thinking=opens_thinking) if reasoning else None
        self._held = ""
        self._holding = tool_mode != "none"
        self.called_tools = False

    def feed(self, chunk: Chunk) -> Delta:
        delta = Delta(logprobs=list(chunk.logprobs))
        reasoning, content = self._split(chunk.text)
        delta.reasoning = reasoning
        delta.content = self._hold_or_pass(content)
        return delta

    def finish(self) -> Delta:
        delta = Delta()
        if self._splitter is not None:
            reasoning, content = self._splitter.flush()
            delta.reasoning = reasoning
            delta.content = self._hold_or_pass(content)
        if self._held:
            calls = parse_tool_calls(self._held, self._tool_names)
            if calls:
                self.called_tools = True
                delta.tool_calls = [
                    {"index": i, "id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": c.arguments}}
                    for i, c in enumerate(calls)]
            else:
                delta.content += self._held
            self._held = ""
        return delta

    def _split(self, text: str) -> tuple[str, str]:
        if self._splitter is None:
            return "", text
        return self._splitter.feed(text)

    def _hold_or_pass(self, text: str) -> str:
        if not self._holding:
            return text
        self._held += text
        if self._tool_mode == "required":
            return ""
        head = self._held.lstrip()
        if not head:
            return ""
        could_be_call = any(head.startswith(o) or o.startswith(head) for o in TOOL_OPENERS)
        if could_be_call:
            return ""
        self._holding = False
        out, self._held = self._held, ""
        return out


def chat_logprobs(items: list[TokenLogprob]) -> dict:
    return {"content": [
        {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.bytes),
         "top_logprobs": [{"token": t, "logprob": p, "bytes": list(b)} for t, p, b in lp.top]}
        for lp in items]}


def completion_logprobs(items: list[TokenLogprob], offset0: int) -> dict:
    offsets, pos = [], offset0
    for lp in items:
        offsets.append(pos)
        pos += len(lp.token)
    return {"tokens": [lp.token for lp in items], "token_logprobs": [lp.logprob for lp in items],
            "top_logprobs": [{t: p for t, p, _ in lp.top} for lp in items], "text_offset": offsets}
