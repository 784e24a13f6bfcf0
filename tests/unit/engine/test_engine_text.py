from __future__ import annotations

from deeplocal.engine.reasoning import ReasoningSplitter
from deeplocal.engine.textstream import StopMatcher, Utf8Stream
from deeplocal.engine.tools import parse_tool_calls


def _feed_all(matcher, parts):
    out, stopped = [], False
    for p in parts:
        text, stopped = matcher.feed(p)
        out.append(text)
        if stopped:
            break
    if not stopped:
        out.append(matcher.flush())
    return "".join(out), stopped


def test_stop_split_across_chunks():
    assert _feed_all(StopMatcher(("END",)), ["hello E", "N", "D more"]) == ("hello ", True)


def test_stop_false_alarm_is_released():
    assert _feed_all(StopMatcher(("END",)), ["hello E", "NJOY"]) == ("hello ENJOY", False)


def test_no_stops_passthrough():
    assert StopMatcher(()).feed("abc") == ("abc", False)


def test_utf8_split_character():
    s = Utf8Stream()
    data = "巴黎".encode()
    assert s.feed(data[:2]) == "" and s.feed(data[2:4]) == "巴" and s.feed(data[4:]) == "黎"


def test_reasoning_split_streaming():
    sp = ReasoningSplitter()
    parts = ["<th", "ink>I think", " hard</th", "ink>\nAnswer: 4"]
    r, c = zip(*(sp.feed(p) for p in parts))
    fr, fc = sp.flush()
    assert "".join(r) + fr == "I think hard" and "".join(c) + fc == "Answer: 4"


def test_reasoning_absent_and_opened_by_template():
    sp = ReasoningSplitter()
    assert sp.feed("plain answer") == ("", "plain answer")
    sp = ReasoningSplitter(started_in_thinking=True)
    assert sp.feed("hmm</think>yes") == ("hmm", "yes")


def test_tool_call_parsing():
    calls = parse_tool_calls('<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>', {"f"})
    assert calls[0].name == "f" and calls[0].arguments == '{"x": 1}'
    assert parse_tool_calls('{"name": "g", "arguments": {}}', {"f"}) == []
    assert parse_tool_calls("just text", {"f"}) == []
