from __future__ import annotations

import json

from deeplocal.api.openai.assemble import ChatAssembler
from deeplocal.engine.types import Chunk, FinishReason


def _run(assembler, parts):
    out = [assembler.feed(Chunk(text=p)) for p in parts]
    out.append(assembler.finish())
    return ("".join(d.reasoning for d in out), "".join(d.content for d in out),
            [c for d in out for c in d.tool_calls])


def test_reasoning_content_split():
    a = ChatAssembler(tool_mode="none", tool_names=set(), reasoning=True, opens_thinking=False)
    assert _run(a, ["<think>", "The user asks", " about France.</think>", "\n\nParis."])[:2] == (
        "The user asks about France.", "Paris.")


def test_reasoning_when_template_opened_the_block():
    a = ChatAssembler(tool_mode="none", tool_names=set(), reasoning=True, opens_thinking=True)
    assert _run(a, ["hmm", "</think>Paris"])[:2] == ("hmm", "Paris")


def test_auto_tools_plain_answer_streams():
    a = ChatAssembler(tool_mode="auto", tool_names={"f"}, reasoning=False, opens_thinking=False)
    first = a.feed(Chunk(text="Hello"))
    assert first.content == "Hello"


def test_auto_tools_call_is_held_and_parsed():
    a = ChatAssembler(tool_mode="auto", tool_names={"f"}, reasoning=False, opens_thinking=False)
    _, content, calls = _run(a, ["<tool", "_call>{\"name\": \"f\", ", "\"arguments\": {\"x\": 2}}</tool_call>"])
    assert content == "" and a.called_tools
    assert calls[0]["function"]["name"] == "f" and json.loads(calls[0]["function"]["arguments"]) == {"x": 2}


def test_required_tool_unparseable_falls_back_to_text():
    a = ChatAssembler(tool_mode="required", tool_names={"f"}, reasoning=False, opens_thinking=False)
    _, content, calls = _run(a, ["not json"])
    assert content == "not json" and calls == [] and not a.called_tools
    assert FinishReason.STOP.value == "stop"
