"""Split DeepSeek-R1 style `<think>...</think>` output into reasoning and answer, while streaming."""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ReasoningSplitter:
    """feed(delta) -> (reasoning_delta, content_delta). Handles tags split across deltas.

    `started_in_thinking` is for templates whose generation prompt already ends with `<think>`.
    """

    def __init__(self, *, started_in_thinking: bool = False):
        self._state = "think" if started_in_thinking else "start"
        self._buf = ""

    def feed(self, delta: str) -> tuple[str, str]:
        self._buf += delta
        reasoning, content = "", ""
        while self._buf:
            if self._state == "start":
                stripped = self._buf.lstrip()
                if not stripped:
                    return reasoning, content
                if stripped.startswith(OPEN):
                    self._buf = stripped[len(OPEN):]
                    self._state = "think"
                elif OPEN.startswith(stripped):
                    return reasoning, content  # could still become <think>
                else:
                    self._state = "answer"
            elif self._state == "think":
                at = self._buf.find(CLOSE)
                if at != -1:
                    reasoning += self._buf[:at]
                    self._buf = self._buf[at + len(CLOSE):]
                    self._state = "after_think"
                    continue
                keep = _partial_tail(self._buf, CLOSE)
                reasoning += self._buf[: len(self._buf) - keep]
                self._buf = self._buf[len(self._buf) - keep:]
                return reasoning, content
            elif self._state == "after_think":   # drop the blank lines between the two parts
                self._buf = self._buf.lstrip("\n")
                if self._buf:
                    self._state = "answer"
            else:
                content += self._buf
                self._buf = ""
        return reasoning, content

    def flush(self) -> tuple[str, str]:
        rest, self._buf = self._buf, ""
        if self._state == "think":
            return rest, ""
        return "", rest


def _partial_tail(text: str, tag: str) -> int:
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
